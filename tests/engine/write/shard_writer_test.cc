// Copyright (c) dcp authors.

#include "engine/write/shard_writer.h"

#include <catch2/catch.hpp>

#include <cstring>

#include "engine/array/box.h"
#include "engine/array/box_index.h"
#include "engine/codec/chunk_codec.h"
#include "engine/sharding/pieces.h"
#include "engine/store/fault_rank_store.h"
#include "engine/store/key_layout.h"
#include "engine/store/memory_rank_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tensor_fill.h"

namespace dcp::write {
namespace {

using testing::StatusIs;

WriteRequest Req(uint64_t generation, std::vector<const ShardedTensor*> tensors,
                 std::vector<const ShardedObject*> objects = {}) {
  WriteRequest r;
  r.generation = generation;
  for (const ShardedTensor* t : tensors) r.AddTensor(*t);
  r.objects = std::move(objects);
  return r;
}

// Rank store 3, in memory; `fault` opens it again with injected failures.
struct Fixture {
  storage::MemoryBackend memory;
  storage::FaultBackend fault{&memory};
  std::unique_ptr<storage::RankStore> store =
      ValueOrDie(memory.Open("/memory/rank", 3, storage::RankStore::Mode::kWrite, {}));

  // The store, reopened through `fault`.
  std::unique_ptr<storage::RankStore> Faulty() {
    store.reset();
    return ValueOrDie(fault.Open("/memory/rank", 3, storage::RankStore::Mode::kWrite, {}));
  }
};

// Reads and decodes one chunk record.
std::string ReadChunk(storage::RankStore* store, uint64_t gen, const std::string& key, const manifest::ChunkEntry& c) {
  storage::PinnedValue v;
  REQUIRE_OK(store->Get(storage::ChunkRecordKey(gen, key, c.box.origin), &v));
  auto h = ValueOrDie(codec::ParseChunkHeader(v.view()));
  std::string raw(h.raw_size, '\0');
  REQUIRE_OK(codec::DecodeChunk(v.view(), h, raw.data(), raw.size()));
  CHECK(h.checksum == c.record.checksum);
  CHECK(h.record_size() == c.record.stored_size);
  return raw;
}

TEST_CASE("a strided shard becomes chunks that tile it, each a readable record", "[write]") {
  Fixture f;
  // A 10x7 int16 shard at offset (20, 7) of a (40, 14) tensor, viewed with row stride 9.
  std::vector<int16_t> backing(10 * 9);
  TensorView view(backing.data(), DType::kInt16, {10, 7}, {9, 1});
  const Shape global = {40, 14};
  const Box box{{20, 7}, {10, 7}};
  testing::FillRegion("t", global, box, view);
  ShardedTensor t;
  t.key = "t";
  t.data = view;
  t.dtype = DType::kInt16;
  t.local_shape = {10, 7};
  t.global_shape = global;
  t.global_offset = box.origin;
  SaveOptions opts;
  opts.chunk_bytes = 40;  // 2 rows of 14 bytes per chunk
  manifest::StepManifest frag;
  WriteStats stats;
  REQUIRE_OK(WriteShards(f.store.get(), Req(77, {&t}, {}), opts, &frag, &stats));
  REQUIRE(frag.tensors.size() == 1);
  const auto& e = frag.tensors[0];
  CHECK(e.key == "t");
  CHECK(e.dtype == DType::kInt16);
  CHECK(e.global_shape == global);
  CHECK(e.chunks.size() == 5);
  CHECK(stats.chunks == 5);
  CHECK(stats.raw_bytes == 10 * 7 * 2);
  std::vector<Box> rel;
  for (const auto& c : e.chunks) {
    CHECK(c.record.store_rank == 3);
    CHECK(c.record.generation == 77);
    CHECK(c.record.raw_size <= 40);
    rel.push_back(array::RelativeTo(c.box, box.origin));
    const std::string raw = ReadChunk(f.store.get(), 77, "t", c);
    CHECK(testing::CheckRegion("t", global, c.box, TensorView(raw.data(), DType::kInt16, c.box.shape)) == "");
  }
  CHECK(array::CheckExactCover(box.shape, rel).ok());
}

TEST_CASE("objects are stored as records too", "[write]") {
  Fixture f;
  ShardedObject o;
  o.key = "opt";
  o.data = std::string(10000, 'q');
  o.global_shape = {2, 2};
  o.global_offset = {1, 0};
  manifest::StepManifest frag;
  WriteStats stats;
  REQUIRE_OK(WriteShards(f.store.get(), Req(5, {}, {&o}), SaveOptions(), &frag, &stats));
  REQUIRE(frag.objects.size() == 1);
  CHECK(frag.objects[0].unique_key() == "opt/shard_1.0_2.2");
  CHECK(frag.objects[0].record.codec == codec::ChunkCodec::kLz4);  // a run of one byte compresses
  storage::PinnedValue v;
  REQUIRE_OK(f.store->Get(storage::ObjectRecordKey(5, "opt/shard_1.0_2.2"), &v));
  CHECK(stats.objects == 1);
}

TEST_CASE("byte planes are used for floats and complex numbers only, a complex number's of its float parts",
          "[write]") {
  Fixture f;
  std::vector<int32_t> ints(4096, 7);
  std::vector<float> floats(4096, 1.5f);
  std::vector<float> complex(2 * 2048);  // 2,048 complex64 values (1.5, -0.25)
  for (size_t i = 0; i < complex.size(); ++i) complex[i] = i % 2 ? -0.25f : 1.5f;
  ShardedTensor a = ShardedTensor::Whole("ints", TensorView(ints.data(), DType::kInt32, {4096}));
  ShardedTensor b = ShardedTensor::Whole("floats", TensorView(floats.data(), DType::kFloat32, {4096}));
  ShardedTensor c = ShardedTensor::Whole("complex", TensorView(complex.data(), DType::kComplex64, {2048}));
  SaveOptions opts;
  opts.compression = Compression::kLz4BytePlane;
  manifest::StepManifest frag;
  WriteStats stats;
  REQUIRE_OK(WriteShards(f.store.get(), Req(1, {&a, &b, &c}, {}), opts, &frag, &stats));
  REQUIRE(frag.tensors.size() == 3);
  CHECK(frag.tensors[0].key == "complex");
  CHECK(frag.tensors[0].chunks[0].record.codec == codec::ChunkCodec::kLz4BytePlane);
  CHECK(frag.tensors[1].key == "floats");
  CHECK(frag.tensors[1].chunks[0].record.codec == codec::ChunkCodec::kLz4BytePlane);
  CHECK(frag.tensors[2].chunks[0].record.codec == codec::ChunkCodec::kLz4);
  // The complex record's planes are float32 ones (4 bytes), and it decodes to the values.
  storage::PinnedValue v;
  REQUIRE_OK(f.store->Get(storage::ChunkRecordKey(1, "complex", {0}), &v));
  const codec::ChunkHeader h = ValueOrDie(codec::ParseChunkHeader(v.view()));
  CHECK(h.elem_size == 4);
  std::vector<float> back(complex.size());
  REQUIRE_OK(codec::DecodeChunk(v.view(), h, back.data(), back.size() * sizeof(float)));
  CHECK(back == complex);
}

// Chunks of x (100 floats, 4 chunks of 100 bytes) and the generation index: 5 records.
struct FailingWrite {
  std::vector<float> x = std::vector<float>(100, 2.0f);
  ShardedTensor t = ShardedTensor::Whole("x", TensorView(x.data(), DType::kFloat32, {100}));
  SaveOptions opts = [] {
    SaveOptions o;
    o.chunk_bytes = 100;
    return o;
  }();
  manifest::StepManifest frag;
  WriteStats stats;
};

// Whether any record of generation 9 is visible.
bool AnyVisible(storage::RankStore* store) {
  bool any = false;
  const auto [begin, end] = storage::GenerationRange(9);
  REQUIRE_OK(store->Scan(begin, end, [&](std::string_view, std::string_view) {
    any = true;
    return Status::OK();
  }));
  return any;
}

TEST_CASE("small chunks are encoded in batches: every record lands in key order with any in-flight bound",
          "[write]") {
  // 1,600 chunks of 64 bytes (batches of 256 chunks), then a 2 MiB tensor in
  // chunks of its own (batches of one), then 600 more small chunks.
  std::vector<int32_t> small(1600 * 16), big(512 << 10), tail(600 * 16);
  for (size_t i = 0; i < small.size(); ++i) small[i] = static_cast<int32_t>(i);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<int32_t>(3 * i + 1);
  for (size_t i = 0; i < tail.size(); ++i) tail[i] = static_cast<int32_t>(7 * i);
  ShardedTensor a = ShardedTensor::Whole("a", TensorView(small.data(), DType::kInt32, {1600, 16}));
  ShardedTensor b = ShardedTensor::Whole("b", TensorView(big.data(), DType::kInt32, {512, 1024}));
  ShardedTensor c = ShardedTensor::Whole("c", TensorView(tail.data(), DType::kInt32, {600, 16}));
  for (int in_flight : {1, 2, 0}) {
    CAPTURE(in_flight);
    Fixture f;
    SaveOptions opts;
    opts.chunk_bytes = 64;
    opts.compression = Compression::kNone;
    WriteRequest req = Req(4, {&a, &c});
    req.max_in_flight = in_flight;
    SaveOptions big_opts = opts;
    manifest::StepManifest frag;
    WriteStats stats;
    REQUIRE_OK(WriteShards(f.store.get(), req, opts, &frag, &stats));
    CHECK(stats.chunks == 2200);
    big_opts.chunk_bytes = 1 << 20;
    WriteRequest big_req = Req(5, {&b});
    big_req.max_in_flight = in_flight;
    REQUIRE_OK(WriteShards(f.store.get(), big_req, big_opts, &frag, &stats));
    REQUIRE(frag.tensors.size() == 3);
    for (const auto& e : frag.tensors) {
      const auto* data = e.key == "a" ? small.data() : e.key == "b" ? big.data() : tail.data();
      const int64_t cols = e.key == "b" ? 1024 : 16;
      for (const auto& ch : e.chunks) {
        const std::string raw = ReadChunk(f.store.get(), ch.record.generation, e.key, ch);
        REQUIRE(raw.size() == static_cast<size_t>(NumElements(ch.box.shape)) * 4);
        CHECK(std::memcmp(raw.data(), data + ch.box.origin[0] * cols, raw.size()) == 0);
      }
    }
    CHECK(frag.tensors[1].chunks.size() == 2);  // "b": 2 MiB in 1 MiB chunks of 256 rows
  }
}

TEST_CASE("a chunk whose read fails in the middle of a batch fails the write, naming it; nothing is visible",
          "[write]") {
  Fixture f;
  std::vector<int32_t> small(1600 * 16, 5);
  ShardedTensor a = ShardedTensor::Whole("a", TensorView(small.data(), DType::kInt32, {1600, 16}));
  WriteRequest req;
  req.generation = 9;
  for (sharding::Piece& p : sharding::PiecesOf(a)) {
    req.tensors.push_back({&a, std::move(p), [&](const Box& box, void* dst) {
                             if (box.origin[0] == 700) return Status::IOError("disk gone");
                             std::memcpy(dst, small.data() + box.origin[0] * 16, NumElements(box.shape) * 4);
                             return Status::OK();
                           }});
  }
  SaveOptions opts;
  opts.chunk_bytes = 64;
  manifest::StepManifest frag;
  WriteStats stats;
  REQUIRE_THAT(WriteShards(f.store.get(), req, opts, &frag, &stats),
               StatusIs(StatusCode::kIOError, "tensor 'a' chunk at offset (700, 0)"));
  CHECK(frag.tensors.empty());
  CHECK_FALSE(AnyVisible(f.store.get()));
}

TEST_CASE("a failed ingestion or record write fails the write and leaves nothing visible", "[write][fault]") {
  Fixture f;
  auto store = f.Faulty();
  {
    FailingWrite w;
    f.fault.FailAt(storage::FaultBackend::Op::kCommit, 1, 3);
    REQUIRE_THAT(WriteShards(store.get(), Req(9, {&w.t}, {}), w.opts, &w.frag, &w.stats),
                 StatusIs(StatusCode::kIOError, "injected I/O error in commit #1 of rank store 3"));
    CHECK(w.frag.tensors.empty());  // the fragment names no record of a failed write
    CHECK_FALSE(AnyVisible(store.get()));
  }
  {
    FailingWrite w;
    f.fault.FailAt(storage::FaultBackend::Op::kAdd, 3, 3);
    REQUIRE_THAT(WriteShards(store.get(), Req(9, {&w.t}, {}), w.opts, &w.frag, &w.stats),
                 StatusIs(StatusCode::kIOError, "injected I/O error in add #3 of rank store 3"));
    CHECK(w.frag.tensors.empty());
    CHECK_FALSE(AnyVisible(store.get()));
  }
  {
    FailingWrite w;
    f.fault.FailAt(storage::FaultBackend::Op::kNewBulkWriter, 1, 3);
    REQUIRE_THAT(WriteShards(store.get(), Req(9, {&w.t}, {}), w.opts, &w.frag, &w.stats),
                 StatusIs(StatusCode::kIOError, "injected I/O error in new_bulk_writer #1"));
  }
  // Nothing else is armed: the same write now succeeds.
  FailingWrite w;
  REQUIRE_OK(WriteShards(store.get(), Req(9, {&w.t}, {}), w.opts, &w.frag, &w.stats));
  REQUIRE(w.frag.tensors.size() == 1);
  CHECK(w.frag.tensors[0].chunks.size() == 4);
  CHECK(AnyVisible(store.get()));
}

TEST_CASE("a short ingestion is detected: the write fails and its fragment references nothing", "[write][fault]") {
  Fixture f;
  auto store = f.Faulty();
  FailingWrite w;
  f.fault.ShortWriteAt(/*keep=*/2);
  REQUIRE_THAT(WriteShards(store.get(), Req(9, {&w.t}, {}), w.opts, &w.frag, &w.stats),
               StatusIs(StatusCode::kIOError, "only 2 of 5 records were committed"));
  CHECK(w.frag.tensors.empty());
  // The two records that made it are garbage of a put that never committed:
  // no manifest will reference them, and the generation's index is missing.
  storage::PinnedValue v;
  CHECK_OK(store->Get(storage::ChunkRecordKey(9, "x", {0}), &v));
  CHECK_THAT(store->Get(storage::ChunkRecordKey(9, "x", {50}), &v), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(store->Get(storage::GenerationIndexKey(9, 0), &v), StatusIs(StatusCode::kNotFound));
}

TEST_CASE("a crash during ingestion loses the write; the reopened store has the earlier one", "[write][crash]") {
  Fixture f;
  storage::FaultBackend fault(&f.memory, [&] { f.memory.Crash(); });
  f.store.reset();
  auto store = ValueOrDie(fault.Open("/memory/rank", 3, storage::RankStore::Mode::kWrite, {}));
  FailingWrite first;
  REQUIRE_OK(WriteShards(store.get(), Req(8, {&first.t}, {}), first.opts, &first.frag, &first.stats));
  fault.CrashAt(storage::FaultBackend::Op::kCommit);
  FailingWrite second;
  REQUIRE_THAT(WriteShards(store.get(), Req(9, {&second.t}, {}), second.opts, &second.frag, &second.stats),
               StatusIs(StatusCode::kIOError, "the store crashed"));
  auto reopened = ValueOrDie(f.memory.Open("/memory/rank", 3, storage::RankStore::Mode::kWrite, {}));
  CHECK_FALSE(AnyVisible(reopened.get()));
  CHECK(ValueOrDie(reopened->NewestGeneration()) == 8);
  for (const auto& c : first.frag.tensors[0].chunks) {
    const std::string raw = ReadChunk(reopened.get(), 8, "x", c);
    CHECK(raw.size() == c.record.raw_size);
  }
}

TEST_CASE("chunk_bytes outside its range is refused", "[write]") {
  Fixture f;
  manifest::StepManifest frag;
  WriteStats stats;
  SaveOptions opts;
  opts.chunk_bytes = 0;
  REQUIRE_THAT(WriteShards(f.store.get(), Req(1, {}, {}), opts, &frag, &stats),
               StatusIs(StatusCode::kInvalidArgument, "chunk_bytes 0 is outside"));
  opts.chunk_bytes = uint64_t{2} << 30;
  REQUIRE_THAT(WriteShards(f.store.get(), Req(1, {}, {}), opts, &frag, &stats),
               StatusIs(StatusCode::kInvalidArgument, "chunk_bytes"));
}

TEST_CASE("a flat shard is written as the boxes of its range, each a readable record", "[write][flat]") {
  Fixture f;
  // Elements [7, 53) of the flattening of a (3, 4, 5) box at offset (3, 0, 5)
  // of a (6, 4, 10) tensor, held in a 1-D view with stride 2.
  const Shape global = {6, 4, 10};
  const Box box{{3, 0, 5}, {3, 4, 5}};
  testing::HostTensor whole(DType::kFloat32, box.shape);
  testing::FillRegion("f", global, box, whole.view());
  const FlatRange range{7, 53};
  std::vector<float> flat(static_cast<size_t>(2 * range.size()));
  const auto* src = static_cast<const float*>(whole.view().data());
  for (int64_t i = 0; i < range.size(); ++i) flat[static_cast<size_t>(2 * i)] = src[range.begin + i];
  ShardedTensor t;
  t.key = "f";
  t.dtype = DType::kFloat32;
  t.local_shape = box.shape;
  t.global_shape = global;
  t.global_offset = box.origin;
  t.data = TensorView(flat.data(), DType::kFloat32, {range.size()}, {2});
  t.flattened_range = range;

  SaveOptions opts;
  opts.chunk_bytes = 32;  // 8 floats: the whole plane and slabs are cut further
  manifest::StepManifest frag;
  WriteStats stats;
  REQUIRE_OK(WriteShards(f.store.get(), Req(12, {&t}), opts, &frag, &stats));
  REQUIRE(frag.tensors.size() == 1);
  const auto& e = frag.tensors[0];
  CHECK(stats.raw_bytes == static_cast<uint64_t>(range.size()) * 4);
  // Together the chunks are exactly the range's boxes.
  std::vector<Box> expected = sharding::FlatRangeBoxes(box.shape, range.begin, range.end);
  std::vector<Box> rel;
  int64_t elements = 0;
  for (const auto& c : e.chunks) {
    REQUIRE(array::Contains(box, c.box));
    rel.push_back(array::RelativeTo(c.box, box.origin));
    elements += c.box.num_elements();
    const std::string raw = ReadChunk(f.store.get(), 12, "f", c);
    CHECK(testing::CheckRegion("f", global, c.box, TensorView(raw.data(), DType::kFloat32, c.box.shape)) == "");
  }
  CHECK(elements == range.size());
  for (const Box& x : expected) {
    int64_t covered = 0;
    Box common;
    for (const Box& c : rel) {
      if (array::Intersect(c, x, &common)) covered += common.num_elements();
    }
    CHECK(covered == x.num_elements());
  }

  // An empty range writes nothing.
  ShardedTensor empty = t;
  empty.flattened_range = FlatRange{24, 24};
  empty.data = TensorView(flat.data(), DType::kFloat32, {0});
  manifest::StepManifest frag2;
  WriteStats stats2;
  REQUIRE_OK(WriteShards(f.store.get(), Req(13, {&empty}), opts, &frag2, &stats2));
  CHECK(frag2.tensors.empty());
  CHECK(stats2.chunks == 0);
}

}  // namespace
}  // namespace dcp::write
