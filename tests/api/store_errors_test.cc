// Copyright (c) dcp authors.
//
// Bad input: each case gets the exact error code and message fragment, on
// every rank; nothing is committed; earlier steps still load.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "dcp/store.h"
#include "engine/base/fault_injection.h"
#include "engine/store/key_layout.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;
using testing::TensorSpec;

const std::vector<TensorSpec> kBase = {{"w", DType::kFloat32, {8, 4}, 0, {2, 1}},
                                       {"b", DType::kBFloat16, {6}, 0, {2}}};

// Saves kBase as step 1 with 2 ranks: the committed step every case must keep.
void SaveBaseline(const std::string& root) {
  std::string why;
  const auto o = testing::SaveAll(root, 1, 2, kBase);
  INFO(why);
  REQUIRE(testing::AllOk(o, &why));
}

void RequireBaselineIntact(const std::string& root) {
  std::string why;
  const auto o = testing::LoadAll(root, 1, 1, {{"w", DType::kFloat32, {8, 4}, 0, {1, 1}},
                                               {"b", DType::kBFloat16, {6}, 0, {1}}});
  INFO(why);
  REQUIRE(testing::AllOk(o, &why));
  auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1});
}

// Runs a put of step 2 on `ranks` ranks after `mutate` edits each rank's dict.
std::vector<Status> PutMutated(const std::string& root, int ranks,
                               const std::function<void(int rank, StateDict&)>& mutate,
                               const SaveOptions& options = {}) {
  std::vector<Status> out(ranks);
  testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kBase, rank, ranks, true);
    mutate(rank, shards.dict);
    auto store = Store::Open(root, comm);
    out[rank] = store.ok() ? (*store)->Put(2, shards.dict, options) : store.status();
  });
  return out;
}

ShardedTensor& FirstTensor(StateDict& sd) { return sd.dict(sd.Find("model")).tensor(0); }

void RequireAll(const std::vector<Status>& s, StatusCode code, const std::string& fragment) {
  for (size_t r = 0; r < s.size(); ++r) {
    INFO("rank " << r);
    REQUIRE_THAT(s[r], StatusIs(code, fragment));
    CHECK(s[r] == s[0]);  // the same error on every rank
  }
}

TEST_CASE("put refuses a view whose dtype disagrees with its declaration", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto s = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) FirstTensor(sd).dtype = DType::kFloat64;
  });
  RequireAll(s, StatusCode::kInvalidArgument, "rank 1: ");
  CHECK(s[0].message().find("view dtype float32 differs from declared dtype float64") != std::string::npos);
  CHECK(s[0].message().find("key 'w'") != std::string::npos);
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses a view whose shape disagrees with its declaration", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto s = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 0) FirstTensor(sd).local_shape = {3, 4};
  });
  RequireAll(s, StatusCode::kInvalidArgument, "view shape (4, 4) differs from declared local shape (3, 4)");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses offsets outside the global shape", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto s = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) FirstTensor(sd).global_offset = {6, 0};
  });
  RequireAll(s, StatusCode::kInvalidArgument, "region [6:10, 0:4] at offset (6, 0) lies outside global shape (8, 4)");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses one key with different dtype or global shape on two ranks", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto s = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) {
      ShardedTensor& t = FirstTensor(sd);
      t.global_shape = {8, 5};
    }
  });
  RequireAll(s, StatusCode::kInvalidArgument, "key 'w': rank 0 declares float32 (8, 4) but rank 1 declares float32 (8, 5)");
  RequireBaselineIntact(dir.path());

  auto d = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 0) {
      ShardedTensor& t = FirstTensor(sd);
      t.dtype = DType::kInt32;
      t.data = TensorView(t.data.data(), DType::kInt32, t.data.shape());
    }
  });
  RequireAll(d, StatusCode::kInvalidArgument, "key 'w': rank 0 declares int32 (8, 4) but rank 1 declares float32 (8, 4)");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses overlapping main replicas and holes", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto overlap = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) FirstTensor(sd).global_offset = {2, 0};
  });
  RequireAll(overlap, StatusCode::kInvalidArgument, "key 'w': main replicas on ranks 0 and 1 overlap at [2:4, 0:4]");
  RequireBaselineIntact(dir.path());

  auto hole = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) {
      ShardedTensor& t = FirstTensor(sd);
      t.local_shape = {3, 4};
      t.data = TensorView(t.data.data(), DType::kFloat32, {3, 4});
      t.global_offset = {5, 0};
    }
  });
  RequireAll(hole, StatusCode::kInvalidArgument, "key 'w': main replicas leave 4 of 32 elements uncovered");
  CHECK(hole[0].message().find("[4:5, 0:4]") != std::string::npos);
  RequireBaselineIntact(dir.path());

  // A replica (non-main) does not fill a hole.
  auto replica = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) FirstTensor(sd).replica_id = {1};
  });
  RequireAll(replica, StatusCode::kInvalidArgument, "key 'w': main replicas leave 16 of 32 elements uncovered");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses duplicate keys", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto same_offset = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 0) sd.Add("again", FirstTensor(sd));
  });
  RequireAll(same_offset, StatusCode::kInvalidArgument, "key 'w' at offset (0, 0) appears twice on this rank");
  auto same_path = PutMutated(dir.path(), 2, [](int rank, StateDict& sd) {
    if (rank == 1) sd.Add("model", Value(1));
  });
  RequireAll(same_path, StatusCode::kInvalidArgument, "duplicate state dict key 'model'");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses an existing step unless overwrite is asked", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  std::vector<Status> s(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kBase, rank, 2, true);
    auto store = Store::Open(dir.path(), comm);
    s[rank] = store.ok() ? (*store)->Put(1, shards.dict) : store.status();
  });
  RequireAll(s, StatusCode::kAlreadyExists, "step 1 already exists");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses ranks that save different steps", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  std::vector<Status> s(3);
  testing::RunRanks(3, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kBase, rank, 3, true);
    auto store = Store::Open(dir.path(), comm);
    s[rank] = store.ok() ? (*store)->Put(rank == 2 ? 3 : 2, shards.dict) : store.status();
  });
  RequireAll(s, StatusCode::kInvalidArgument, "rank 2 saves step 3 but rank 0 step 2: every rank must save the same step");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("put refuses ranks whose write-layout options differ", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  // Each rank computes the same write assignment from chunk_bytes and
  // fully_parallel: ranks that differ fail together, by name.
  auto put = [&](const std::vector<SaveOptions>& options) {
    std::vector<Status> s(options.size());
    testing::RunRanks(static_cast<int>(options.size()), [&](int rank, Communicator* comm) {
      auto shards = testing::BuildShards(kBase, rank, static_cast<int>(options.size()), true);
      auto store = Store::Open(dir.path(), comm);
      s[rank] = store.ok() ? (*store)->Put(2, shards.dict, options[rank]) : store.status();
    });
    return s;
  };
  const SaveOptions plain;
  const SaveOptions small{.chunk_bytes = 64};
  const SaveOptions serial{.fully_parallel = false};
  RequireAll(put({plain, plain, small}), StatusCode::kInvalidArgument,
             "put of step 2: rank 2 saves with chunk_bytes 64 but rank 0 with 8388608: every rank must use the same");
  RequireAll(put({plain, serial, plain}), StatusCode::kInvalidArgument,
             "rank 1 does not save fully parallel but rank 0 does: every rank must use the same");
  RequireAll(put({serial, plain, serial}), StatusCode::kInvalidArgument,
             "rank 1 saves fully parallel but rank 0 does not");
  RequireBaselineIntact(dir.path());
}

TEST_CASE("calls that rank 0 carries out for every rank refuse ranks whose arguments differ", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  std::string why;
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 2, 2, kBase), &why));
  // `call(rank, store)` on 3 ranks of a writable store.
  auto run = [&](const std::function<Status(int, Store&)>& call, StoreOptions options = {}) {
    std::vector<Status> s(3);
    testing::RunRanks(3, [&](int rank, Communicator* comm) {
      StoreOptions o = options;
      if (rank == 2 && o.read_only) o.read_only = false;  // the one rank that differs
      auto store = Store::Open(dir.path(), comm, o);
      s[rank] = store.ok() ? call(rank, **store) : store.status();
    });
    return s;
  };
  RequireAll(run([](int rank, Store& st) { return st.DeleteStep(rank == 1 ? 1 : 2); }),
             StatusCode::kInvalidArgument,
             "rank 1 calls DeleteStep(1) but rank 0 DeleteStep(2): every rank must make the same call");
  RequireAll(run([](int rank, Store& st) {
               return st.ApplyRetention(RetentionPolicy{.keep_steps = rank == 2 ? std::vector<uint64_t>{2, 1}
                                                                                 : std::vector<uint64_t>{2}})
                   .status();
             }),
             StatusCode::kInvalidArgument,
             "rank 2 calls ApplyRetention(keep_last 0, keep_every 0, keep_steps [1, 2]) but rank 0 "
             "ApplyRetention(keep_last 0, keep_every 0, keep_steps [2])");
  RequireAll(run([](int rank, Store& st) {
               return st.RemoveTensors(2, "w", RemoveTensorsOptions{.into_step = rank == 0 ? 3 : 2}).status();
             }),
             StatusCode::kInvalidArgument,
             "rank 1 calls RemoveTensors(step 2, prefix 'w', into step 2) but rank 0 RemoveTensors(step 2, prefix "
             "'w', into step 3)");
  // A rank that would open its rank store for writing without rank 0's
  // writer lock fails every rank before any rank store is opened.
  RequireAll(run([](int, Store&) { return Status::OK(); }, StoreOptions{.read_only = true}),
             StatusCode::kInvalidArgument,
             "rank 2 calls Open(read-write, repair) but rank 0 Open(read_only, repair)");
  // A write session that one rank commits and another aborts.
  RequireAll(run([](int rank, Store& st) {
               DCP_RETURN_IF_ERROR(st.BeginStep(5));
               // Both fail and keep their sessions, which the store's close drops.
               return rank == 1 ? st.AbortStep() : st.CommitStep();
             }),
             StatusCode::kInvalidArgument, "rank 1 calls AbortStep but rank 0 CommitStep");
  // Two different calls at once: a part on rank 0, a garbage collection (a
  // status agreement of another call) on the others. Every rank fails with
  // the same message, and the session is still there to abort.
  RequireAll(run([](int rank, Store& st) {
               DCP_RETURN_IF_ERROR(st.BeginStep(5));
               const StateDict nothing;
               Status s = rank == 0 ? st.PutPart(nothing) : st.CollectGarbage();
               if (Status aborted = st.AbortStep(); !aborted.ok()) return aborted;
               return s;
             }),
             StatusCode::kInvalidArgument,
             "rank 1 calls CollectGarbage but rank 0 calls PutPart: every rank must make the same call");
  // A put on rank 0 and an async put on the others: both start with a status
  // agreement, each named by its call.
  RequireAll(run([](int rank, Store& st) {
               auto shards = testing::BuildShards(kBase, rank, 3, true);
               if (rank == 0) return st.Put(7, shards.dict);
               DCP_RETURN_IF_ERROR(st.PutAsync(7, shards.dict));
               return st.WaitForPut();
             }),
             StatusCode::kInvalidArgument,
             "rank 1 calls PutAsync but rank 0 calls Put: every rank must make the same call");
  // A get on rank 0 and a put on the others: the get's first round is an
  // agreement too, not rank 0's broadcast of the manifest (which would meet
  // the put's all-gather).
  RequireAll(run([](int rank, Store& st) {
               auto shards = testing::BuildShards(kBase, rank, 3, rank != 0);
               if (rank == 0) return st.Get(2, &shards.dict).status();
               return st.Put(7, shards.dict);
             }),
             StatusCode::kInvalidArgument,
             "rank 1 calls Put but rank 0 calls Get: every rank must make the same call");
  // Rank 0 asks for the latest step while the others get: the latest step's
  // answer rides on an agreement named by its call.
  RequireAll(run([](int rank, Store& st) {
               auto shards = testing::BuildShards(kBase, rank, 3, false);
               if (rank == 0) return st.AgreedLatestStep().status();
               return st.Get(2, &shards.dict).status();
             }),
             StatusCode::kInvalidArgument,
             "rank 1 calls Get but rank 0 calls AgreedLatestStep: every rank must make the same call");
  // Nothing changed.
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1, 2});
  CHECK(ValueOrDie(store->Metadata(2)).tensors.size() == 2);
}

TEST_CASE("get refuses ranks that get different steps", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  std::string why;
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 2, 2, kBase), &why));
  // `steps[r]`: the step rank r asks for, as ranks that each read "the
  // latest" from their own view of the store could.
  auto get = [&](std::vector<uint64_t> steps) {
    std::vector<Status> s(steps.size());
    testing::RunRanks(static_cast<int>(steps.size()), [&](int rank, Communicator* comm) {
      auto shards = testing::BuildShards(kBase, rank, static_cast<int>(steps.size()), false);
      auto store = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
      s[rank] = store.ok() ? (*store)->Get(steps[rank], &shards.dict).status() : store.status();
    });
    return s;
  };
  RequireAll(get({2, 2, 1}), StatusCode::kInvalidArgument,
             "get of step 2: rank 2: rank 2 gets step 1 but rank 0 step 2: every rank must get the same step");
  RequireAll(get({1, 2, 2}), StatusCode::kInvalidArgument,
             "get of step 1: rank 1: rank 1 gets step 2 but rank 0 step 1: every rank must get the same step");
  // Rank 0's error wins where its own step is not there.
  RequireAll(get({9, 1, 1}), StatusCode::kNotFound, "get of step 9: step 9 is not committed");
  CHECK(get({2, 2, 2})[0].ok());
}

TEST_CASE("get refuses ranks whose strict or read-once options differ, without a hang", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  // The options decide which collectives a get runs: each rank that differs
  // from rank 0 fails, and every rank runs rank 0's collectives meanwhile.
  auto get = [&](const std::vector<LoadOptions>& options) {
    std::vector<Status> s(options.size());
    testing::RunRanks(static_cast<int>(options.size()), [&](int rank, Communicator* comm) {
      auto shards = testing::BuildShards(kBase, rank, static_cast<int>(options.size()), false);
      auto store = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
      s[rank] = store.ok() ? (*store)->Get(1, &shards.dict, options[rank]).status() : store.status();
    });
    return s;
  };
  const LoadOptions plain;
  const LoadOptions raise_all{.strict = StrictHandling::kRaiseAll};
  const LoadOptions read_once{.read_once = true};
  const LoadOptions both{.strict = StrictHandling::kRaiseAll, .read_once = true};
  RequireAll(get({plain, raise_all, plain}), StatusCode::kInvalidArgument,
             "get of step 1: rank 1: rank 1 gets with strict handling 'raise_all' but rank 0 with "
             "'assume_ok_unexpected': every rank must use the same");
  RequireAll(get({raise_all, raise_all, plain}), StatusCode::kInvalidArgument,
             "rank 2 gets with strict handling 'assume_ok_unexpected' but rank 0 with 'raise_all'");
  RequireAll(get({plain, plain, read_once}), StatusCode::kInvalidArgument,
             "get of step 1: rank 2: rank 2 gets read-once but rank 0 does not: every rank must use the same");
  RequireAll(get({both, read_once, both}), StatusCode::kInvalidArgument,
             "rank 1 gets with strict handling 'assume_ok_unexpected' but rank 0 with 'raise_all'");
  for (const auto& o : {plain, raise_all, read_once, both}) {
    for (const Status& s : get({o, o, o})) CHECK(s.ok());
  }
}

TEST_CASE("a read-only store refuses put", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  REQUIRE_THAT(store->Put(3, StateDict()), StatusIs(StatusCode::kFailedPrecondition, "opened read-only"));
}

// A single-rank request for `spec`.
Result<LoadResult> GetOne(const std::string& root, uint64_t step, const std::string& key, DType dtype,
                          const Shape& global, testing::HostTensor* buf) {
  auto store = Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true});
  if (!store.ok()) return store.status();
  StateDict req;
  ShardedTensor t;
  t.key = key;
  t.dtype = dtype;
  t.data = buf->view();
  t.local_shape = t.data.shape();
  t.global_shape = global;
  t.global_offset.assign(global.size(), 0);
  req.Add("x", t);
  return (*store)->Get(step, &req);
}

TEST_CASE("get reports unknown steps and keys, dtype and shape mismatches", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  testing::HostTensor w(DType::kFloat32, {8, 4});
  REQUIRE_THAT(GetOne(dir.path(), 9, "w", DType::kFloat32, {8, 4}, &w).status(),
               StatusIs(StatusCode::kNotFound, "step 9 is not committed"));
  REQUIRE_THAT(GetOne(dir.path(), 1, "nope", DType::kFloat32, {8, 4}, &w).status(),
               StatusIs(StatusCode::kNotFound, "tensor 'nope' is not in step 1"));
  testing::HostTensor wi(DType::kInt32, {8, 4});
  REQUIRE_THAT(GetOne(dir.path(), 1, "w", DType::kInt32, {8, 4}, &wi).status(),
               StatusIs(StatusCode::kInvalidArgument, "requests dtype int32 but step 1 holds tensor 'w' as float32"));
  testing::HostTensor ws(DType::kFloat32, {8, 5});
  REQUIRE_THAT(GetOne(dir.path(), 1, "w", DType::kFloat32, {8, 5}, &ws).status(),
               StatusIs(StatusCode::kInvalidArgument, "requests global shape (8, 5) but step 1 holds"));
}

TEST_CASE("get errors are the same on every rank", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  std::vector<Status> s(3);
  testing::RunRanks(3, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kBase, rank, 3, false);
    if (rank == 2) FirstTensor(shards.dict).key = "missing";
    auto store = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
    s[rank] = store.ok() ? (*store)->Get(1, &shards.dict).status() : store.status();
  });
  RequireAll(s, StatusCode::kNotFound, "rank 2: state dict entry 'model.w#0': tensor 'missing' is not in step 1");
}

TEST_CASE("a rank whose own input failed joins the call with it: every rank fails, nothing changes",
          "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  const Status refused = Status::InvalidArgument("TypeError: common state 'opt.fn' holds a function");
  std::vector<Status> put(3), async(3), part(3), get(3), after(3), begin(3), remove(3), del(3), retain(3);
  testing::RunRanks(3, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kBase, rank, 3, true);
    const bool failing = rank == 1;
    const StateDict empty;
    const StateDict& mine = failing ? empty : shards.dict;
    const Status local = failing ? refused : Status::OK();
    // The failing rank passes placeholders (step 0, no prefix), as a
    // binding does for arguments it could not convert.
    const uint64_t step = failing ? 0 : 2;
    auto store = ValueOrDie(Store::Open(dir.path(), comm));
    put[rank] = store->Put(step, mine, {}, nullptr, local);
    async[rank] = store->PutAsync(step, mine, {}, local);
    begin[rank] = store->BeginStep(step, {}, local);
    remove[rank] = store->RemoveTensors(failing ? 0 : 1, failing ? "" : "w", {}, local).status();
    del[rank] = store->DeleteStep(failing ? 0 : 1, local);
    const RetentionPolicy keep_last{.keep_last = 1, .keep_every = 0, .keep_steps = {}};
    retain[rank] = store->ApplyRetention(keep_last, local).status();
    // A refused part leaves the session usable: the parts then go in whole.
    Status s = store->BeginStep(3);
    if (s.ok()) {
      part[rank] = store->PutPart(mine, nullptr, local);
      s = store->PutPart(shards.dict);
      if (s.ok()) s = store->AbortStep();
    }
    after[rank] = s;
    auto request = testing::BuildShards(kBase, rank, 3, false);
    StateDict nothing;
    get[rank] = store->Get(1, failing ? &nothing : &request.dict, {}, local).status();
  });
  const std::string want = "rank 1: TypeError: common state 'opt.fn' holds a function";
  // Named by rank 0's step on every rank.
  RequireAll(put, StatusCode::kInvalidArgument, "put of step 2: " + want);
  RequireAll(async, StatusCode::kInvalidArgument, "async put of step 2: " + want);
  RequireAll(begin, StatusCode::kInvalidArgument, "put of step 2: " + want);
  // The failing rank's own error, not that its placeholders differ (the
  // calls differ: not annotated with arguments); the same calls: annotated.
  REQUIRE(remove[0] == Status::InvalidArgument(want));
  RequireAll(remove, StatusCode::kInvalidArgument, want);
  REQUIRE(del[0] == Status::InvalidArgument(want));
  RequireAll(del, StatusCode::kInvalidArgument, want);
  RequireAll(retain, StatusCode::kInvalidArgument, "retention: " + want);
  RequireAll(part, StatusCode::kInvalidArgument, want);
  RequireAll(get, StatusCode::kInvalidArgument, want);
  for (const Status& s : after) REQUIRE(s.ok());
  RequireBaselineIntact(dir.path());
}

TEST_CASE("a get whose request failed on one rank reads nothing on the others", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  // Rank 0 cannot read a chunk: had it read, its error (the lowest rank's)
  // would be the one every rank reports.
  base::ArmFaultPoint("get.read_chunk", 0);
  struct Disarm {
    ~Disarm() { base::DisarmAllFaultPoints(); }
  } disarm;
  const Status refused = Status::InvalidArgument("TypeError: state dict entry 'w' is not a tensor");
  for (const bool read_once : {false, true}) {
    std::vector<Status> get(3);
    testing::RunRanks(3, [&](int rank, Communicator* comm) {
      const bool failing = rank == 1;
      auto store = ValueOrDie(Store::Open(dir.path(), comm, StoreOptions{.read_only = true}));
      auto request = testing::BuildShards(kBase, rank, 3, false);
      StateDict nothing;
      get[rank] = store->Get(1, failing ? &nothing : &request.dict, LoadOptions{.read_once = read_once},
                             failing ? refused : Status::OK())
                      .status();
    });
    INFO("read_once " << read_once);
    RequireAll(get, StatusCode::kInvalidArgument, "rank 1: TypeError: state dict entry 'w' is not a tensor");
  }
}

TEST_CASE("read reports regions outside the tensor and destination mismatches", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  testing::HostTensor buf(DType::kFloat32, {4, 4});
  REQUIRE_THAT(store->Read(1, "w", Box{{6, 0}, {4, 4}}, buf.view()),
               StatusIs(StatusCode::kInvalidArgument, "region [6:10, 0:4] lies outside tensor 'w' of global shape (8, 4)"));
  REQUIRE_THAT(store->Read(1, "w", Box{{0, 0}, {2, 4}}, buf.view()),
               StatusIs(StatusCode::kInvalidArgument, "destination shape (4, 4) does not match region [0:2, 0:4]"));
  testing::HostTensor ibuf(DType::kInt32, {4, 4});
  REQUIRE_THAT(store->Read(1, "w", Box{{0, 0}, {4, 4}}, ibuf.view()),
               StatusIs(StatusCode::kInvalidArgument, "requests dtype int32"));
  REQUIRE_THAT(store->Read(1, "zzz", Box{{0, 0}, {4, 4}}, buf.view()),
               StatusIs(StatusCode::kNotFound, "tensor 'zzz' is not in step 1"));
  REQUIRE_THAT(store->Read(4, "w", Box{{0, 0}, {4, 4}}, buf.view()),
               StatusIs(StatusCode::kNotFound, "step 4 is not committed"));
  // An expand()ed destination: a row's 4 elements are one.
  const TensorView shared(buf.view().data(), DType::kFloat32, {4, 4}, {1, 0});
  REQUIRE_THAT(store->Read(1, "w", Box{{0, 0}, {4, 4}}, shared),
               StatusIs(StatusCode::kInvalidArgument, "read of 'w' from step 1: the destination view has stride 0 on "
                                                      "axis 1 of extent 4, so its elements share memory"));
  REQUIRE_OK(store->Read(1, "w", Box{{4, 0}, {4, 4}}, buf.view()));
  CHECK(testing::CheckRegion("w", {8, 4}, Box{{4, 0}, {4, 4}}, buf.view()) == "");
}

// Flips one byte of the file at the first occurrence of `needle`.
bool FlipByteAt(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t pos = bytes.find(needle);
  if (pos == std::string::npos) return false;
  bytes[pos + needle.size() / 2] ^= 0x40;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return true;
}

TEST_CASE("a flipped byte in a chunk record is data loss naming key, offset and rank", "[api][errors]") {
  testing::TempDir dir;
  // "big" records (128 KiB per rank) sit in table blocks of their own, so
  // the damage stays in one record; the small tensor "b" shares no block.
  const std::vector<TensorSpec> specs = {{"big", DType::kFloat32, {2, 32768}, 0, {2, 1}},
                                         {"b", DType::kBFloat16, {6}, 0, {2}}};
  std::string why;
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 1, 2, specs), &why));
  // Rank 1 wrote big[1:2] raw (random bytes do not compress): find its bytes.
  testing::HostTensor part(DType::kFloat32, {1, 32768});
  testing::FillRegion("big", {2, 32768}, Box{{1, 0}, {1, 32768}}, part.view());
  const std::string needle = part.bytes().substr(4096, 64);
  bool flipped = false;
  for (const auto& e : std::filesystem::directory_iterator(storage::RankStorePath(dir.path(), 1))) {
    if (e.path().extension() == ".sst") flipped = flipped || FlipByteAt(e.path().string(), needle);
  }
  REQUIRE(flipped);
  testing::HostTensor big(DType::kFloat32, {2, 32768});
  const Status s = GetOne(dir.path(), 1, "big", DType::kFloat32, {2, 32768}, &big).status();
  REQUIRE_THAT(s, StatusIs(StatusCode::kDataLoss, "tensor 'big' chunk at offset (1, 0) in rank store 1"));
  // Caught by the table block's checksum, before RocksDB parses the block.
  CHECK_THAT(s, StatusIs(StatusCode::kDataLoss, "block checksum mismatch"));
  // The rest of the step still loads.
  testing::HostTensor b(DType::kBFloat16, {6});
  REQUIRE_OK(GetOne(dir.path(), 1, "b", DType::kBFloat16, {6}, &b).status());
  CHECK(testing::CheckRegion("b", {6}, Box{{0}, {6}}, b.view()) == "");
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  testing::HostTensor row0(DType::kFloat32, {1, 32768});
  REQUIRE_OK(store->Read(1, "big", Box{{0, 0}, {1, 32768}}, row0.view()));
}

TEST_CASE("truncated or garbage manifests are data loss", "[api][errors]") {
  testing::TempDir dir;
  SaveBaseline(dir.path());
  const std::string path = storage::ManifestPath(dir.path(), 1);
  const auto size = std::filesystem::file_size(path);
  testing::HostTensor w(DType::kFloat32, {8, 4});
  std::filesystem::resize_file(path, size - 7);
  REQUIRE_THAT(GetOne(dir.path(), 1, "w", DType::kFloat32, {8, 4}, &w).status(),
               StatusIs(StatusCode::kDataLoss, "is truncated"));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string(4096, 'x');
  }
  REQUIRE_THAT(GetOne(dir.path(), 1, "w", DType::kFloat32, {8, 4}, &w).status(),
               StatusIs(StatusCode::kDataLoss, "does not start with the magic"));
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  REQUIRE_THAT(store->Metadata(1).status(), StatusIs(StatusCode::kDataLoss, path));
}

TEST_CASE("a path that is not a dcp store is refused", "[api][errors]") {
  testing::TempDir dir;
  {
    std::ofstream(dir.Sub("README")) << "not a store";
  }
  REQUIRE_THAT(Store::Open(dir.path(), nullptr).status(),
               StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
  REQUIRE_THAT(Store::Open(dir.Sub("README"), nullptr).status(),
               StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
  REQUIRE_THAT(Store::Open(dir.Sub("missing"), nullptr, StoreOptions{.create_if_missing = false}).status(),
               StatusIs(StatusCode::kNotFound, "does not exist"));
}

}  // namespace
}  // namespace dcp

namespace dcp {
namespace {

TEST_CASE("a view that claims CUDA memory it does not have is refused", "[api][errors]") {
  // Host memory labelled cuda:0: refused whether the build has no CUDA, the
  // machine has no device, or the pointer is simply not device memory.
  testing::TempDir dir;
  std::vector<float> host(32, 1.0f);
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  StateDict sd;
  sd.Add("w", ShardedTensor::Whole("w", TensorView(host.data(), DType::kFloat32, {32}, {}, Device::Cuda(0))));
  REQUIRE_THAT(store->Put(1, sd), testing::StatusIs(StatusCode::kInvalidArgument,
                                                    "state dict entry 'w' (key 'w' at offset (0,)): view is on cuda:0 but"));
  CHECK(ValueOrDie(store->Steps()).empty());
  StateDict ok;
  ok.Add("w", ShardedTensor::Whole("w", TensorView(host.data(), DType::kFloat32, {32})));
  REQUIRE_OK(store->Put(1, ok));
  REQUIRE_THAT(store->Read(1, "w", Box{{0}, {32}}, TensorView(host.data(), DType::kFloat32, {32}, {}, Device::Cuda(0))),
               testing::StatusIs(StatusCode::kInvalidArgument, "view is on cuda:0 but"));
}

}  // namespace
}  // namespace dcp
