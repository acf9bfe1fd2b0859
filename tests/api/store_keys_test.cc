// Copyright (c) dcp authors.
//
// Keys at load: strict key handling in every mode (unexpected keys per rank,
// missing keys over all ranks), step metadata, and the plain (one-process,
// whole-tensor) load.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;
using testing::TensorSpec;

constexpr int kRanks = 2;
constexpr char kSentinel = 0x5a;

const std::vector<TensorSpec>& Specs() {
  static const std::vector<TensorSpec> specs = {
      {"a", DType::kFloat32, {8, 4}, 0, {2, 1}},
      {"b", DType::kInt32, {6}, 0, {2}},
      {"layers.w", DType::kBFloat16, {2, 4, 4}, 1, {2, 1, 1}},  // a PP layer axis
      {"opt.m", DType::kFloat32, {8, 4}, 0, {1, 2}},
  };
  return specs;
}

// Step 1 of a store saved by two ranks: Specs(), a 0-d scalar (rank 0's copy
// the main replica), object "rng" (one cell per rank), common "iteration".
void SaveFixture(const std::string& root) {
  std::vector<Status> s(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(Specs(), rank, kRanks, /*fill=*/true);
    float scale = 0.5f;
    ShardedTensor t = ShardedTensor::Whole("scale", TensorView(&scale, DType::kFloat32, {}));
    t.replica_id = {rank};
    shards.dict.Add("scale", t);
    shards.dict.Add("rng", ShardedObject{"rng", "rng-" + std::to_string(rank), {kRanks}, {rank}, {}});
    shards.dict.Add("iteration", Value(int64_t{1}));
    auto store = Store::Open(root, comm);
    s[rank] = store.ok() ? (*store)->Put(1, shards.dict) : store.status();
  });
  for (const Status& x : s) REQUIRE_OK(x);
}

// Captures what is written to stderr (fd 2) between construction and Finish.
class StderrCapture {
 public:
  StderrCapture() : file_(std::tmpfile()) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() {
    if (saved_ >= 0) Finish();
  }
  std::string Finish() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
    std::string out;
    std::rewind(file_);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), file_)) > 0;) out.append(buf, n);
    std::fclose(file_);
    return out;
  }

 private:
  std::FILE* file_;
  int saved_ = -1;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// One rank's view of a strict load.
struct RankLoad {
  Status status;
  LoadResult result;
  std::string check;          // first mismatch in the loaded "a" shards, if any
  bool a_untouched = false;   // every byte of the "a" shards still the sentinel
  bool extras_untouched = false;
};

// Rank r requests its shards of "a" (under nested dict keys of its own),
// object cell r of "rng" on rank 1, and the extra keys `extra(r)` (tensors,
// whose destinations start as sentinels).
std::vector<RankLoad> StrictLoad(const std::string& root, StrictHandling mode,
                                 const std::function<std::vector<std::string>(int)>& extra, uint64_t step = 1,
                                 const std::vector<TensorSpec>& wanted = {Specs()[0]}, bool scale = false) {
  std::vector<RankLoad> out(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    RankLoad& me = out[rank];
    auto shards = testing::BuildShards(wanted, rank, kRanks, /*fill=*/false);
    for (auto& b : shards.buffers) std::memset(b.bytes().data(), kSentinel, b.bytes().size());
    std::vector<std::string> extras = extra(rank);
    std::vector<float> extra_data(extras.size() * 4, 0.0f);
    if (!extra_data.empty()) std::memset(extra_data.data(), kSentinel, extra_data.size() * sizeof(float));
    StateDict& nested = shards.dict.Child("decoder").Child("layers");
    for (size_t i = 0; i < extras.size(); ++i) {
      nested.Add("extra" + std::to_string(i),
                 ShardedTensor::Whole(extras[i], TensorView(&extra_data[i * 4], DType::kFloat32, {4})));
    }
    if (rank == 1) shards.dict.Add("rng", ShardedObject{"rng", "", {kRanks}, {1}, {}});
    float scale_value = 0;
    if (scale && rank == 0) shards.dict.Add("scale", ShardedTensor::Whole("scale", TensorView(&scale_value, DType::kFloat32, {})));
    auto store = Store::Open(root, comm, StoreOptions{.create_if_missing = false, .read_only = true});
    if (!store.ok()) {
      me.status = store.status();
      return;
    }
    LoadOptions options;
    options.strict = mode;
    auto loaded = (*store)->Get(step, &shards.dict, options);
    me.status = loaded.status();
    if (loaded.ok()) me.result = std::move(loaded).value();
    me.a_untouched = true;
    for (auto& b : shards.buffers) {
      me.a_untouched &= b.bytes().find_first_not_of(kSentinel) == std::string::npos;
    }
    const StateDict& model = shards.dict.dict(shards.dict.Find("model"));
    for (size_t i = 0; i < model.size() && me.check.empty(); ++i) {
      const ShardedTensor& t = model.tensor(i);
      me.check = testing::CheckRegion(t.key, t.global_shape, t.global_box(), t.data);
    }
    std::vector<char> sentinel(extra_data.size() * sizeof(float), kSentinel);
    me.extras_untouched =
        sentinel.empty() || std::memcmp(extra_data.data(), sentinel.data(), sentinel.size()) == 0;
    if (rank == 1 && loaded.ok() && shards.dict.object(shards.dict.Find("rng")).data != "rng-1") {
      me.check = "object rng cell 1 not loaded";
    }
    if (scale && rank == 0 && loaded.ok() && scale_value != 0.5f) me.check = "scale not loaded";
  });
  return out;
}

std::vector<std::string> ExtraPerRank(int rank) { return {"extra" + std::to_string(rank)}; }
std::vector<std::string> NoExtra(int) { return {}; }

const std::vector<std::string> kMissing = {"b", "layers.w", "opt.m", "scale"};

TEST_CASE("by default an unknown key fails the load on every rank", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  auto r = StrictLoad(dir.path(), StrictHandling::kAssumeOkUnexpected,
                      [](int rank) { return rank == 1 ? std::vector<std::string>{"extra1"} : std::vector<std::string>{}; });
  for (const RankLoad& x : r) {
    REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound, "rank 1: "));
    REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound, "tensor 'extra1' is not in step 1"));
    CHECK(x.status == r[0].status);
  }
}

TEST_CASE("return modes report unexpected keys per rank and missing keys over all ranks", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  SECTION("kReturnAll") {
    auto r = StrictLoad(dir.path(), StrictHandling::kReturnAll, ExtraPerRank);
    for (int rank = 0; rank < kRanks; ++rank) {
      INFO("rank " << rank);
      REQUIRE_OK(r[rank].status);
      CHECK(r[rank].check.empty());  // the request's entries are filled in place, under its own dict keys
      CHECK(r[rank].extras_untouched);
      CHECK(r[rank].result.unexpected_keys == std::vector<std::string>{"extra" + std::to_string(rank)});
      CHECK(r[rank].result.missing_keys == kMissing);  // the same on every rank; "rng" was asked for by rank 1
      CHECK(r[rank].result.common_state.Find("iteration")->as_int() == 1);
    }
  }
  SECTION("kReturnUnexpected") {
    auto r = StrictLoad(dir.path(), StrictHandling::kReturnUnexpected,
                        [](int rank) { return std::vector<std::string>{"z" + std::to_string(rank), "extra", "extra"}; });
    for (int rank = 0; rank < kRanks; ++rank) {
      REQUIRE_OK(r[rank].status);
      CHECK(r[rank].check.empty());
      CHECK(r[rank].extras_untouched);
      // Sorted, each key once (two entries named "extra").
      CHECK(r[rank].result.unexpected_keys == std::vector<std::string>{"extra", "z" + std::to_string(rank)});
      CHECK(r[rank].result.missing_keys.empty());
    }
  }
  SECTION("a key requested by any rank is not missing") {
    auto r = StrictLoad(dir.path(), StrictHandling::kReturnAll, NoExtra, 1, Specs());
    for (int rank = 0; rank < kRanks; ++rank) {
      REQUIRE_OK(r[rank].status);
      CHECK(r[rank].check.empty());
      CHECK(r[rank].result.unexpected_keys.empty());
      CHECK(r[rank].result.missing_keys == std::vector<std::string>{"scale"});
    }
    r = StrictLoad(dir.path(), StrictHandling::kReturnAll, NoExtra, 1, Specs(), /*scale=*/true);
    for (int rank = 0; rank < kRanks; ++rank) {
      REQUIRE_OK(r[rank].status);
      CHECK(r[rank].check.empty());
      CHECK(r[rank].result.missing_keys.empty());
    }
  }
}

TEST_CASE("ignore and log modes load what exists and drop the rest", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  SECTION("kIgnoreAll is silent") {
    StderrCapture capture;
    auto r = StrictLoad(dir.path(), StrictHandling::kIgnoreAll, ExtraPerRank);
    const std::string log = capture.Finish();
    for (const RankLoad& x : r) {
      REQUIRE_OK(x.status);
      CHECK(x.check.empty());
      CHECK(x.extras_untouched);
      CHECK(x.result.unexpected_keys.empty());
      CHECK(x.result.missing_keys.empty());
    }
    CHECK(log.find("dcp:") == std::string::npos);
  }
  SECTION("kLogUnexpected: each rank its own unexpected keys") {
    StderrCapture capture;
    auto r = StrictLoad(dir.path(), StrictHandling::kLogUnexpected, ExtraPerRank);
    const std::string log = capture.Finish();
    for (const RankLoad& x : r) {
      REQUIRE_OK(x.status);
      CHECK(x.check.empty());
      CHECK(x.extras_untouched);
      CHECK(x.result.unexpected_keys.empty());  // logged, not returned
    }
    INFO(log);
    CHECK(Count(log, "dcp: get of step 1: rank 0 requested 1 key not in the step (not loaded): 'extra0'\n") == 1);
    CHECK(Count(log, "dcp: get of step 1: rank 1 requested 1 key not in the step (not loaded): 'extra1'\n") == 1);
    CHECK(Count(log, "missing") == 0);
  }
  SECTION("kLogAll: and rank 0 the missing keys, once") {
    StderrCapture capture;
    auto r = StrictLoad(dir.path(), StrictHandling::kLogAll, ExtraPerRank);
    const std::string log = capture.Finish();
    for (const RankLoad& x : r) {
      REQUIRE_OK(x.status);
      CHECK(x.check.empty());
    }
    INFO(log);
    CHECK(Count(log, "rank 0 requested 1 key not in the step (not loaded): 'extra0'\n") == 1);
    CHECK(Count(log, "rank 1 requested 1 key not in the step (not loaded): 'extra1'\n") == 1);
    CHECK(Count(log, "dcp: get of step 1: 4 keys of the step requested by no rank (missing): 'b', 'layers.w', "
                     "'opt.m', 'scale'\n") == 1);
  }
}

TEST_CASE("raise modes fail on every rank with one error naming keys and ranks, reading nothing", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  SECTION("kRaiseUnexpected") {
    auto r = StrictLoad(dir.path(), StrictHandling::kRaiseUnexpected, ExtraPerRank);
    for (const RankLoad& x : r) {
      REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound,
                                      "get of step 1: strict key handling: unexpected keys (requested, not in step "
                                      "1): rank 0: 'extra0'; rank 1: 'extra1'"));
      CHECK(x.status.message().find("missing") == std::string::npos);
      CHECK(x.status == r[0].status);
      CHECK(x.a_untouched);  // nothing was read
      CHECK(x.extras_untouched);
    }
  }
  SECTION("kRaiseUnexpected without unexpected keys loads (missing keys are fine)") {
    auto r = StrictLoad(dir.path(), StrictHandling::kRaiseUnexpected, NoExtra);
    for (const RankLoad& x : r) {
      REQUIRE_OK(x.status);
      CHECK(x.check.empty());
    }
  }
  SECTION("kRaiseAll names unexpected and missing keys") {
    auto r = StrictLoad(dir.path(), StrictHandling::kRaiseAll,
                        [](int rank) { return rank == 1 ? std::vector<std::string>{"extra1"} : std::vector<std::string>{}; });
    for (const RankLoad& x : r) {
      REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound,
                                      "get of step 1: strict key handling: unexpected keys (requested, not in step "
                                      "1): rank 1: 'extra1'; missing keys (in step 1, requested by no rank): 'b', "
                                      "'layers.w', 'opt.m', 'scale'"));
      CHECK(x.status == r[0].status);
      CHECK(x.a_untouched);
    }
  }
  SECTION("kRaiseAll with only missing keys") {
    auto r = StrictLoad(dir.path(), StrictHandling::kRaiseAll, NoExtra);
    for (const RankLoad& x : r) {
      REQUIRE_THAT(x.status, StatusIs(StatusCode::kInvalidArgument,
                                      "get of step 1: strict key handling: missing keys (in step 1, requested by no "
                                      "rank): 'b', 'layers.w', 'opt.m', 'scale'"));
      CHECK(x.status == r[0].status);
      CHECK(x.a_untouched);
    }
  }
  SECTION("kRaiseAll with every key requested by some rank loads") {
    auto r = StrictLoad(dir.path(), StrictHandling::kRaiseAll, NoExtra, 1, Specs(), /*scale=*/true);
    for (const RankLoad& x : r) {
      REQUIRE_OK(x.status);
      CHECK(x.check.empty());
    }
  }
  SECTION("long lists are cut") {
    auto r = StrictLoad(dir.path(), StrictHandling::kRaiseUnexpected, [](int rank) {
      std::vector<std::string> keys;
      for (int i = 0; i < (rank == 0 ? 20 : 1); ++i) keys.push_back("k" + std::to_string(100 + i));
      return keys;
    });
    for (const RankLoad& x : r) {
      REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound, "rank 0: 'k100', 'k101',"));
      REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound, "'k115' and 4 more; rank 1: 'k100'"));
    }
  }
}

TEST_CASE("strict handling agrees on earlier failures and on an unknown step", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  for (StrictHandling mode : {StrictHandling::kRaiseAll, StrictHandling::kReturnAll, StrictHandling::kLogUnexpected}) {
    INFO("mode " << static_cast<int>(mode));
    auto r = StrictLoad(dir.path(), mode, ExtraPerRank, /*step=*/9);
    for (const RankLoad& x : r) {
      REQUIRE_THAT(x.status, StatusIs(StatusCode::kNotFound, "get of step 9: step 9 is not committed"));
      CHECK(x.status == r[0].status);
    }
  }
  // Rank 1's request is malformed (a view that disagrees with its declaration).
  std::vector<Status> s(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards({Specs()[0]}, rank, kRanks, /*fill=*/false);
    std::vector<float> wrong(3);
    if (rank == 1) {
      ShardedTensor t = ShardedTensor::Whole("b", TensorView(wrong.data(), DType::kFloat32, {3}));
      t.local_shape = {6};
      shards.dict.Add("bad", t);
    }
    auto store = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
    LoadOptions options;
    options.strict = StrictHandling::kRaiseAll;
    s[rank] = store.ok() ? (*store)->Get(1, &shards.dict, options).status() : store.status();
  });
  for (const Status& x : s) {
    REQUIRE_THAT(x, StatusIs(StatusCode::kInvalidArgument, "get of step 1: rank 1: "));
    CHECK(x == s[0]);
  }
}

TEST_CASE("an unexpected object is dropped like a tensor", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  std::vector<LoadResult> results(kRanks);
  std::vector<Status> s(kRanks);
  std::vector<std::string> data(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    StateDict sd;
    sd.Child("state").Add("rng", ShardedObject{"rng", "", {kRanks}, {rank}, {}});
    sd.Add("other", ShardedObject{"no.such.object", "untouched", {1}, {0}, {}});
    auto store = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
    LoadOptions options;
    options.strict = StrictHandling::kReturnAll;
    auto loaded = (*store)->Get(1, &sd, options);
    s[rank] = loaded.status();
    if (loaded.ok()) results[rank] = *loaded;
    data[rank] = sd.dict(sd.Find("state")).object(0).data + "|" + sd.object(sd.Find("other")).data;
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    REQUIRE_OK(s[rank]);
    CHECK(data[rank] == "rng-" + std::to_string(rank) + "|untouched");
    CHECK(results[rank].unexpected_keys == std::vector<std::string>{"no.such.object"});
    CHECK(results[rank].missing_keys == std::vector<std::string>{"a", "b", "layers.w", "opt.m", "scale"});
  }
}

TEST_CASE("the engine integrations' own objects are never missing keys", "[api][keys]") {
  testing::TempDir dir;
  std::vector<Status> saved(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(Specs(), rank, kRanks, /*fill=*/true);
    if (rank == 0) {  // what dcp.integrations keeps in a step (docs/format.md 5c)
      shards.dict.Add("x", ShardedObject{"__torch_dcp__", "planner data", {1}, {0}, {}});
      shards.dict.Add("d", ShardedObject{"__dcp_step_directory__", "step-1", {1}, {0}, {}});
    }
    auto store = Store::Open(dir.path(), comm);
    saved[rank] = store.ok() ? (*store)->Put(1, shards.dict) : store.status();
  });
  for (const Status& x : saved) REQUIRE_OK(x);
  for (StrictHandling mode : {StrictHandling::kRaiseAll, StrictHandling::kReturnAll}) {
    std::vector<Result<LoadResult>> results(kRanks, Status::Internal("not run"));
    testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
      auto shards = testing::BuildShards(Specs(), rank, kRanks, /*fill=*/false);
      auto store = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
      LoadOptions options;
      options.strict = mode;
      results[rank] = store.ok() ? (*store)->Get(1, &shards.dict, options) : Result<LoadResult>(store.status());
    });
    for (const auto& r : results) {
      REQUIRE_OK(r.status());
      CHECK(r->missing_keys.empty());
      CHECK(r->unexpected_keys.empty());
    }
  }
}

TEST_CASE("metadata lists tensors with dtype and global shape, objects with unique keys", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  const StepMetadata m = ValueOrDie(store->Metadata(1));
  std::vector<std::string> keys;
  for (const TensorInfo& t : m.tensors) keys.push_back(t.key);
  CHECK(keys == std::vector<std::string>{"a", "b", "layers.w", "opt.m", "scale"});
  REQUIRE(m.FindTensor("layers.w") != nullptr);
  CHECK(m.FindTensor("layers.w")->dtype == DType::kBFloat16);
  CHECK(m.FindTensor("layers.w")->global_shape == Shape{2, 4, 4});
  CHECK(m.FindTensor("b")->dtype == DType::kInt32);
  CHECK(m.FindTensor("b")->raw_bytes == 24);
  CHECK(m.FindTensor("scale")->global_shape.empty());
  CHECK(m.FindTensor("zzz") == nullptr);
  REQUIRE(m.objects.size() == 2);
  CHECK(m.objects[0].unique_key == "rng/shard_0_2");
  CHECK(m.objects[1].unique_key == "rng/shard_1_2");
  REQUIRE(m.FindObject("rng/shard_1_2") != nullptr);
  CHECK(m.FindObject("rng/shard_1_2")->key == "rng");
  CHECK(m.FindObject("rng/shard_1_2")->global_offset == Shape{1});
  CHECK(m.FindObject("rng/shard_1_2")->size == 5);
  CHECK(m.FindObject("rng") == nullptr);
  CHECK(m.info.num_tensors == 5);
  CHECK(m.info.num_objects == 2);
  REQUIRE_THAT(store->Metadata(2).status(), StatusIs(StatusCode::kNotFound, "step 2 is not committed"));
}

TEST_CASE("a plain load reads whole tensors, objects and the common state on one process", "[api][keys]") {
  testing::TempDir dir;
  SaveFixture(dir.path());
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  LoadOptions small;
  small.max_inflight_bytes = 1;  // one record at a time
  SECTION("everything") {
    PlainState p = ValueOrDie(store->LoadPlain(1, {}, small));
    REQUIRE(p.tensors.size() == 5);
    for (const TensorSpec& spec : Specs()) {
      const PlainTensor* t = p.FindTensor(spec.key);
      REQUIRE(t != nullptr);
      CHECK(t->dtype() == spec.dtype);
      CHECK(t->shape() == spec.global);
      CHECK(t->size_bytes() == static_cast<uint64_t>(NumElements(spec.global)) * DTypeSize(spec.dtype));
      CHECK(testing::CheckRegion(spec.key, spec.global, Box{Shape(spec.global.size(), 0), spec.global}, t->view()) ==
            "");
    }
    const PlainTensor* scale = p.FindTensor("scale");
    REQUIRE(scale != nullptr);
    CHECK(scale->shape().empty());
    float v = 0;
    std::memcpy(&v, scale->data(), sizeof(v));
    CHECK(v == 0.5f);
    CHECK(p.tensors[0].key() == "a");  // sorted
    REQUIRE(p.objects.size() == 2);
    CHECK(p.objects[0].unique_key() == "rng/shard_0_2");
    CHECK(p.objects[0].data == "rng-0");
    CHECK(p.FindObject("rng/shard_1_2")->data == "rng-1");
    CHECK(p.common_state.Find("iteration")->as_int() == 1);
  }
  SECTION("the tensors and objects of given keys") {
    PlainState p = ValueOrDie(store->LoadPlain(1, {"opt.m", "rng", "b", "b"}));
    REQUIRE(p.tensors.size() == 2);
    CHECK(p.tensors[0].key() == "b");
    CHECK(p.tensors[1].key() == "opt.m");
    CHECK(testing::CheckRegion("b", {6}, Box{{0}, {6}}, p.tensors[0].view()) == "");
    CHECK(p.objects.size() == 2);
    PlainState only_object = ValueOrDie(store->LoadPlain(1, {"rng"}));
    CHECK(only_object.tensors.empty());
    CHECK(only_object.objects.size() == 2);
  }
  SECTION("errors") {
    REQUIRE_THAT(store->LoadPlain(1, {"b", "nope"}).status(),
                 StatusIs(StatusCode::kNotFound, "plain load of step 1: key 'nope' names no tensor or object of step 1"));
    REQUIRE_THAT(store->LoadPlain(4).status(), StatusIs(StatusCode::kNotFound, "step 4 is not committed"));
  }
}

}  // namespace
}  // namespace dcp
