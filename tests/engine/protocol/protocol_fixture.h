// Copyright (c) dcp authors.
//
// What the tests of the store protocols share: a state dict of n ranks (each
// holds two row slabs of "w", a float32 tensor of 4n x 8, and the common
// state), and running a protocol on every rank of an in-process group
// over one StoreContext per rank.

#ifndef DCP_TESTS_ENGINE_PROTOCOL_PROTOCOL_FIXTURE_H_
#define DCP_TESTS_ENGINE_PROTOCOL_PROTOCOL_FIXTURE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dcp/state_dict.h"
#include "engine/protocol/store_context.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/tensor_fill.h"

namespace dcp::protocol {

struct RankState {
  std::vector<std::unique_ptr<testing::HostTensor>> buffers;
  StateDict dict;
};

// Rank `rank` of `ranks`: rows [4 rank, 4 rank + 4) of "w" as two slabs of 2
// rows (keys "w.lo", "w.hi" in the dict), filled (save) or zeroed (load), and
// the common state {"iteration": 7}.
inline RankState WState(int rank, int ranks, bool fill) {
  RankState s;
  for (int half = 0; half < 2; ++half) {
    auto buf = std::make_unique<testing::HostTensor>(DType::kFloat32, Shape{2, 8});
    const Box box{{4 * rank + 2 * half, 0}, {2, 8}};
    if (fill) testing::FillRegion("w", {4 * ranks, 8}, box, buf->view());
    ShardedTensor t;
    t.key = "w";
    t.data = buf->view();
    t.dtype = DType::kFloat32;
    t.local_shape = {2, 8};
    t.global_shape = {4 * ranks, 8};
    t.global_offset = box.origin;
    s.dict.Add(half == 0 ? "w.lo" : "w.hi", t);
    s.buffers.push_back(std::move(buf));
  }
  s.dict.Add("iteration", Value(int64_t{7}));  // replicated, as Megatron's common state
  return s;
}

// Runs fn(rank, comm, store) on `ranks` in-process ranks, each over its own
// StoreContext of `root` (opened collectively; REQUIREd to open), whose rank
// stores rank r opens through backend_of(r) (default: RocksDB).
void RunOnStore(const std::string& root, int ranks,
                const std::function<void(int rank, Communicator* comm, StoreContext* store)>& fn,
                const StoreOptions& options = {},
                const std::function<storage::RankStoreBackend*(int rank)>& backend_of = nullptr);

}  // namespace dcp::protocol

#endif  // DCP_TESTS_ENGINE_PROTOCOL_PROTOCOL_FIXTURE_H_
