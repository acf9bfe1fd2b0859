// Copyright (c) dcp authors.
//
// A step written by two rank stores (via the real write path) and its
// manifest, for planner and assembler tests. The rank stores are in memory
// (storage::MemoryBackend): read them with StoreSet(f.root, nullptr, &f.memory).

#ifndef DCP_TESTS_ENGINE_QUERY_QUERY_FIXTURE_H_
#define DCP_TESTS_ENGINE_QUERY_QUERY_FIXTURE_H_

#include <memory>

#include "engine/manifest/manifest.h"
#include "engine/query/chunk_index.h"
#include "engine/store/key_layout.h"
#include "engine/store/memory_rank_store.h"
#include "engine/store/rank_store.h"
#include "engine/write/shard_writer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tensor_fill.h"

namespace dcp::query {

// Tensor "w" (float32, 12 x 6) split by rows over rank stores 0 and 1; each
// 6-row shard is cut into balanced 3-row chunks (rows 0, 3 | 6, 9); tensor
// "s" (int64, 0-d) on rank 0.
struct StepFixture {
  storage::MemoryBackend memory;
  const std::string root = "/memory/step";
  std::shared_ptr<manifest::StepManifest> m = std::make_shared<manifest::StepManifest>();
  uint64_t generation = 0x1234;

  StepFixture() {
    m->step = 3;
    m->generation = generation;
    m->world_size = 2;
    for (uint32_t r = 0; r < 2; ++r) {
      auto store =
          ValueOrDie(memory.Open(storage::RankStorePath(root, r), r, storage::RankStore::Mode::kWrite, {}));
      testing::HostTensor buf(DType::kFloat32, {6, 6});
      const Box box{{6 * r, 0}, {6, 6}};
      testing::FillRegion("w", {12, 6}, box, buf.view());
      ShardedTensor t;
      t.key = "w";
      t.data = buf.view();
      t.dtype = DType::kFloat32;
      t.local_shape = {6, 6};
      t.global_shape = {12, 6};
      t.global_offset = box.origin;
      testing::HostTensor s(DType::kInt64, {});
      testing::FillRegion("s", {}, Box{}, s.view());
      ShardedTensor st = ShardedTensor::Whole("s", s.view());
      std::vector<const ShardedTensor*> tensors = {&t};
      if (r == 0) tensors.push_back(&st);
      SaveOptions opts;
      opts.chunk_bytes = 4 * 6 * 4;
      manifest::StepManifest frag;
      write::WriteStats stats;
      write::WriteRequest req;
      req.generation = generation;
      for (const ShardedTensor* x : tensors) req.AddTensor(*x);
      REQUIRE_OK(write::WriteShards(store.get(), req, opts, &frag, &stats));
      for (auto& e : frag.tensors) {
        manifest::TensorEntry* dst = nullptr;
        for (auto& x : m->tensors) {
          if (x.key == e.key) dst = &x;
        }
        if (dst == nullptr) {
          m->tensors.push_back(e);
        } else {
          dst->chunks.insert(dst->chunks.end(), e.chunks.begin(), e.chunks.end());
        }
      }
    }
    m->Canonicalize();
    REQUIRE_OK(manifest::CheckManifestInvariants(*m));
  }

  std::shared_ptr<StepIndex> Index() { return std::make_shared<StepIndex>(m); }
};

}  // namespace dcp::query

#endif  // DCP_TESTS_ENGINE_QUERY_QUERY_FIXTURE_H_
