// Copyright (c) dcp authors.
//
// End-to-end resharding on in-process ranks: distributed-optimizer flat slices
// saved in one TP/PP/DP layout and loaded in others (flat or not), irregular
// shards, and shape mismatch (vocabulary padding). Bad input gets the same
// error on every rank, nothing is committed, and the earlier step loads.
// tests/mpi/matrix_mpi_test.cc runs such layouts under real mpirun.

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "tests/api/shard_layouts.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::Placement;
using testing::RankShards;
using testing::StatusIs;

// A tensor and the grid of one save or load: `dp` > 0 slices every box into
// flat ranges over dp ranks, dp == 0 keeps boxes whole.
struct GridTensor {
  std::string key;
  DType dtype;
  Shape global;
  int prepend;
  Shape fragments;
};

struct Layout {
  std::vector<GridTensor> tensors;
  int dp = 0;
};

RankShards Build(const Layout& layout, int rank, int ranks, bool fill) {
  RankShards s;
  for (const GridTensor& t : layout.tensors) {
    int i = 0;
    for (const Placement& p : testing::GridPlacements(t.global, t.fragments, layout.dp, rank, ranks)) {
      s.Add(t.key + "." + std::to_string(i++), t.key, t.dtype, t.global, t.prepend, p, fill);
    }
  }
  return s;
}

// Runs `body` on `ranks` in-process ranks over store `root`; returns every rank's status.
std::vector<Status> OnRanks(const std::string& root, int ranks,
                            const std::function<Status(int rank, int ranks, Store* store)>& body) {
  std::vector<Status> out(static_cast<size_t>(ranks));
  testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
    auto store = Store::Open(root, comm);
    out[static_cast<size_t>(rank)] = store.ok() ? body(rank, ranks, store->get()) : store.status();
  });
  return out;
}

Status Save(const std::string& root, uint64_t step, int ranks, const Layout& layout) {
  for (const Status& s : OnRanks(root, ranks, [&](int rank, int n, Store* store) {
         RankShards shards = Build(layout, rank, n, true);
         return store->Put(step, shards.dict());
       })) {
    DCP_RETURN_IF_ERROR(s);
  }
  return Status::OK();
}

// Loads `layout` on `ranks` ranks and checks every byte; the first failure.
Status Load(const std::string& root, uint64_t step, int ranks, const Layout& layout) {
  for (const Status& s : OnRanks(root, ranks, [&](int rank, int n, Store* store) {
         RankShards shards = Build(layout, rank, n, false);
         DCP_RETURN_IF_ERROR(store->Get(step, &shards.dict()).status());
         const std::string bad = shards.Verify();
         return bad.empty() ? Status::OK() : Status::Internal("rank " + std::to_string(rank) + ": " + bad);
       })) {
    DCP_RETURN_IF_ERROR(s);
  }
  return Status::OK();
}

void RequireAll(const std::vector<Status>& s, StatusCode code, const std::string& fragment) {
  for (size_t r = 0; r < s.size(); ++r) {
    INFO("rank " << r << ": " << s[r].ToString());
    REQUIRE_THAT(s[r], StatusIs(code, fragment));
    CHECK(s[r] == s[0]);  // the same error on every rank
  }
}

// Adam's exp_avg of a weight (12, 10) and of a stack of 4 layers (4, 12, 4)
// whose layer axis is prepended (one layer per box, spread over the model
// groups as pipeline stages would hold them), under a TP grid of tp_rows x
// tp_cols, sliced over dp ranks (dp == 0: not flat).
Layout Optimizer(int64_t tp_rows, int64_t tp_cols, int dp) {
  return Layout{{{"optimizer.state.exp_avg.w", DType::kFloat32, {12, 10}, 0, {tp_rows, tp_cols}},
                 {"optimizer.state.exp_avg.layers", DType::kBFloat16, {4, 12, 4}, 1, {4, tp_rows, tp_cols}}},
                dp};
}

TEST_CASE("flat slices round-trip across TP, PP and DP layouts", "[api][flat]") {
  testing::TempDir dir;
  // 6 ranks: TP 2 (rows) x DP 3, each box sliced unevenly.
  REQUIRE_OK(Save(dir.path(), 1, 6, Optimizer(2, 1, 3)));
  SECTION("same grid, other DP") { REQUIRE_OK(Load(dir.path(), 1, 4, Optimizer(2, 1, 2))); }
  SECTION("another TP grid (columns), DP 2") { REQUIRE_OK(Load(dir.path(), 1, 4, Optimizer(1, 2, 2))); }
  SECTION("a finer TP grid, DP 1 (whole boxes as flat ranges)") {
    REQUIRE_OK(Load(dir.path(), 1, 3, Optimizer(3, 1, 1)));
  }
  SECTION("non-flat requests: the model's layout") { REQUIRE_OK(Load(dir.path(), 1, 2, Optimizer(2, 2, 0))); }
  SECTION("one process, whole tensors") { REQUIRE_OK(Load(dir.path(), 1, 1, Optimizer(1, 1, 0))); }
  SECTION("several boxes per rank, many small slices") { REQUIRE_OK(Load(dir.path(), 1, 5, Optimizer(4, 2, 5))); }
}

TEST_CASE("non-flat saves load as flat slices", "[api][flat]") {
  testing::TempDir dir;
  REQUIRE_OK(Save(dir.path(), 1, 4, Optimizer(2, 2, 0)));
  REQUIRE_OK(Load(dir.path(), 1, 6, Optimizer(2, 1, 3)));
}

TEST_CASE("flat slices with data-parallel replicas and an async put", "[api][flat]") {
  testing::TempDir dir;
  // 4 ranks: DP 2 slices, each group duplicated (replica id {1}) on two more ranks.
  const Layout layout = Optimizer(2, 1, 2);
  auto statuses = OnRanks(dir.path(), 8, [&](int rank, int, Store* store) {
    RankShards shards = Build(layout, rank % 4, 4, true);
    if (rank >= 4) {
      for (size_t i = 0; i < shards.dict().size(); ++i) shards.dict().tensor(i).replica_id = {1};
    }
    DCP_RETURN_IF_ERROR(store->PutAsync(1, shards.dict()));
    // The caller's buffers may change once PutAsync returns.
    for (size_t i = 0; i < shards.dict().size(); ++i) {
      TensorView v = shards.dict().tensor(i).data;
      std::memset(v.data(), 0, v.size_bytes());
    }
    return store->WaitForPut();
  });
  for (const Status& s : statuses) REQUIRE_OK(s);
  REQUIRE_OK(Load(dir.path(), 1, 3, Optimizer(1, 2, 3)));
}

TEST_CASE("irregular shards: uneven, several per rank, empty", "[api][irregular]") {
  testing::TempDir dir;
  const std::vector<std::vector<int64_t>> save = {{1, 0, 4}, {7}, {}, {3, 6, 2}, {0}, {5, 4}};
  const std::vector<std::vector<int64_t>> load = {{14, 3}, {6, 0}, {3, 1, 1, 2, 2}};
  for (const auto& [sizes, step_or_load] : {std::make_pair(save, 0), std::make_pair(load, 1)}) {
    const bool saving = step_or_load == 0;
    auto s = OnRanks(dir.path(), static_cast<int>(sizes.size()), [&](int rank, int, Store* store) {
      RankShards shards;
      int i = 0;
      for (const Placement& p : testing::SplitPlacements(sizes, rank)) {
        shards.Add("v" + std::to_string(i++), "v", DType::kInt16, {32}, 0, p, saving);
      }
      if (saving) return store->Put(1, shards.dict());
      DCP_RETURN_IF_ERROR(store->Get(1, &shards.dict()).status());
      return shards.Verify().empty() ? Status::OK() : Status::Internal(shards.Verify());
    });
    for (const Status& x : s) REQUIRE_OK(x);
  }
}

// --- Bad flat input: refused on every rank, nothing committed --------------

void RequireOnlyStep1(const std::string& root) {
  REQUIRE_OK(Load(root, 1, 2, Optimizer(1, 1, 2)));
  auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1});
}

// A put of step 2 from 6 ranks (TP 2 x DP 3) after `mutate` edits rank r's shards.
std::vector<Status> PutMutated(const std::string& root, const std::function<void(int rank, StateDict&)>& mutate) {
  return OnRanks(root, 6, [&](int rank, int n, Store* store) {
    RankShards shards = Build(Optimizer(2, 1, 3), rank, n, true);
    mutate(rank, shards.dict());
    return store->Put(2, shards.dict());
  });
}

// Rank r's flat shard of "w" (the first entry of its dict).
ShardedTensor& W(StateDict& sd) { return sd.tensor(0); }

TEST_CASE("bad flat ranges are refused on every rank", "[api][flat][errors]") {
  testing::TempDir dir;
  REQUIRE_OK(Save(dir.path(), 1, 6, Optimizer(2, 1, 3)));
  // Box (0, 0) of "w" is 6 x 10 = 60 elements: DP slices [0, 21), [21, 39), [39, 60).
  REQUIRE(testing::UnevenBounds(60, 3) == std::vector<int64_t>{0, 21, 39, 60});
  SECTION("overlap") {
    auto s = PutMutated(dir.path(), [](int rank, StateDict& sd) {
      if (rank == 1) {  // [20, 38): shifted one element to the front (its 18-element buffer)
        W(sd).flattened_range = FlatRange{20, 38};
      }
    });
    RequireAll(s, StatusCode::kInvalidArgument,
               "key 'optimizer.state.exp_avg.w' at offset (0, 0): flattened ranges [0, 21) (rank 0) and [20, 38) "
               "(rank 1) overlap");
  }
  SECTION("hole") {
    auto s = PutMutated(dir.path(), [](int rank, StateDict& sd) {
      if (rank == 5) {  // box (6, 0): [39, 59) leaves the last element
        W(sd).flattened_range = FlatRange{39, 59};
        W(sd).data = TensorView(W(sd).data.data(), W(sd).dtype, {20});
      }
    });
    RequireAll(s, StatusCode::kInvalidArgument,
               "key 'optimizer.state.exp_avg.w' at offset (6, 0): flattened ranges leave [59, 60) of [0, 60) uncovered");
  }
  SECTION("mixing flat and non-flat shards of one key") {
    auto s = PutMutated(dir.path(), [](int rank, StateDict& sd) {
      if (rank == 4) {  // claims its whole box, not flat
        W(sd).flattened_range.reset();
        W(sd).data = TensorView(W(sd).data.data(), W(sd).dtype, {1, 10});
        W(sd).local_shape = {1, 10};
      }
    });
    RequireAll(s, StatusCode::kInvalidArgument,
               "key 'optimizer.state.exp_avg.w' mixes flattened and non-flattened shards (ranks 0 and 4)");
  }
  SECTION("a range outside the box, on one rank") {
    auto s = PutMutated(dir.path(), [](int rank, StateDict& sd) {
      if (rank == 2) W(sd).flattened_range = FlatRange{40, 61};
    });
    RequireAll(s, StatusCode::kInvalidArgument, "rank 2: ");
    CHECK_THAT(s[0], StatusIs(StatusCode::kInvalidArgument, "flattened range [40, 61) is not within [0, 60]"));
  }
  RequireOnlyStep1(dir.path());
}

// --- Shape mismatch (vocabulary padding) -----------------------------------

// Rank r of 2 loads the columns [c0, c1) of a (2, cols) request of "emb".
Status LoadEmbedding(const std::string& root, Shape global, bool allow, std::vector<std::string>* got) {
  got->assign(2, "");
  auto s = OnRanks(root, 2, [&](int rank, int, Store* store) {
    const int64_t half = global[1] / 2;
    testing::HostTensor buf(DType::kFloat32, {2, half});
    std::memset(buf.bytes().data(), 0xA5, buf.bytes().size());
    ShardedTensor t = ValueOrDie(
        ShardedTensorFromRankOffsets("emb", buf.view(), {{1, rank, 2}}));
    t.allow_shape_mismatch = allow;
    StateDict sd;
    sd.Add("embedding", t);
    DCP_RETURN_IF_ERROR(store->Get(1, &sd).status());
    (*got)[static_cast<size_t>(rank)] = buf.bytes();
    return Status::OK();
  });
  for (size_t r = 1; r < s.size(); ++r) {
    if (s[r] != s[0]) return Status::Internal("ranks disagree: " + s[0].ToString() + " vs " + s[r].ToString());
  }
  return s[0];
}

TEST_CASE("allow_shape_mismatch pads and clips vocabulary rows", "[api][mismatch]") {
  testing::TempDir dir;
  // "emb" saved with global shape (2, 32) by 2 ranks (TP on the last axis).
  auto saved = OnRanks(dir.path(), 2, [](int rank, int, Store* store) {
    RankShards shards;
    shards.Add("embedding", "emb", DType::kFloat32, {2, 32}, 0, Placement{Box{{0, 16 * rank}, {2, 16}}, {}, {}},
               true);
    return store->Put(1, shards.dict());
  });
  for (const Status& s : saved) REQUIRE_OK(s);
  const std::string whole = testing::ExpectedBytes("emb", DType::kFloat32, {2, 32}, Box{{0, 0}, {2, 32}}, {});
  auto saved_cols = [&](int64_t row, int64_t c0, int64_t n) { return whole.substr((row * 32 + c0) * 4, n * 4); };
  std::vector<std::string> got;

  SECTION("padded to (2, 36): columns 32..35 are zeros") {
    REQUIRE_OK(LoadEmbedding(dir.path(), {2, 36}, true, &got));
    for (int64_t row = 0; row < 2; ++row) {
      CHECK(got[0].substr(static_cast<size_t>(row * 18 * 4), 18 * 4) == saved_cols(row, 0, 18));
      CHECK(got[1].substr(static_cast<size_t>(row * 18 * 4), 14 * 4) == saved_cols(row, 18, 14));
      CHECK(got[1].substr(static_cast<size_t>((row * 18 + 14) * 4), 4 * 4) == std::string(16, '\0'));
    }
  }
  SECTION("clipped to (2, 28)") {
    REQUIRE_OK(LoadEmbedding(dir.path(), {2, 28}, true, &got));
    for (int64_t row = 0; row < 2; ++row) {
      CHECK(got[0].substr(static_cast<size_t>(row * 14 * 4), 14 * 4) == saved_cols(row, 0, 14));
      CHECK(got[1].substr(static_cast<size_t>(row * 14 * 4), 14 * 4) == saved_cols(row, 14, 14));
    }
  }
  SECTION("without the flag: a clear error on every rank") {
    CHECK_THAT(LoadEmbedding(dir.path(), {2, 36}, false, &got),
               StatusIs(StatusCode::kInvalidArgument,
                        "state dict entry 'embedding': requests global shape (2, 36) but step 1 holds tensor 'emb' with "
                        "global shape (2, 32) (set allow_shape_mismatch to pad or clip)"));
  }
}

}  // namespace
}  // namespace dcp
