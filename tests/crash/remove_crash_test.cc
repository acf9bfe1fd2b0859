// Copyright (c) dcp authors.
//
// Crash consistency of Store::RemoveTensors: a child process (this binary,
// running the hidden test case "remove tensors child") removes the tensors of
// a prefix, in place or into a new step, and SIGKILLs itself at a named crash
// point of the publish (remove.before_publish, publish.after_manifest). After
// each kill: every step is either the old one or the new one, whole, and
// loads bit-exact; the store reopens for writing; one garbage collection
// removes every leftover and a second finds nothing; the removal can be run
// again.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "engine/store/key_layout.h"
#include "tests/crash/child_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

constexpr int64_t kRows = 64, kCols = 256;

float ValueOf(const std::string& key, int64_t i) {
  return static_cast<float>(key.size() * 1000000 + i);
}

std::vector<float> Contents(const std::string& key) {
  std::vector<float> v(kRows * kCols);
  for (int64_t i = 0; i < kRows * kCols; ++i) v[i] = ValueOf(key, i);
  return v;
}

const std::vector<std::string> kKeys = {"keep", "drop.a", "drop.bb"};

void SaveStep1(const std::string& root) {
  auto store = ValueOrDie(Store::Open(root, nullptr));
  std::vector<std::vector<float>> data;
  StateDict sd;
  for (const std::string& k : kKeys) data.push_back(Contents(k));
  for (size_t i = 0; i < kKeys.size(); ++i) {
    sd.Add(kKeys[i], ShardedTensor::Whole(kKeys[i], TensorView(data[i].data(), DType::kFloat32, {kRows, kCols})));
  }
  sd.Add("rng", ShardedObject{"rng", "state", {1}, {0}, {}});
  sd.Add("iteration", Value(int64_t{1}));
  SaveOptions o;
  o.chunk_bytes = 16 * kCols * 4;
  REQUIRE_OK(store->Put(1, sd, o));
}

// Runs this binary's child test case with `env` added; true if it was killed
// by SIGKILL, false if it exited 0 (anything else fails the test).
bool RunChild(const std::vector<std::string>& env_add) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const testing::ChildOutcome o = testing::RunChild({self, "remove tensors child"}, env_add);
  if (o.killed) return true;
  REQUIRE(o.exit_code == 0);
  return false;
}

// The tensor keys of `step` if it loads bit-exact (with its object and
// common state); fails the test otherwise.
std::vector<std::string> LoadsWhole(Store* store, uint64_t step) {
  PlainState p = ValueOrDie(store->LoadPlain(step));
  std::vector<std::string> keys;
  for (const PlainTensor& t : p.tensors) {
    keys.push_back(t.key());
    std::vector<float> got(kRows * kCols);
    REQUIRE(t.size_bytes() == got.size() * sizeof(float));
    std::memcpy(got.data(), t.data(), t.size_bytes());
    CHECK(got == Contents(t.key()));
  }
  REQUIRE(p.objects.size() == 1);
  CHECK(p.objects[0].data == "state");
  CHECK(p.common_state.Find("iteration")->as_int() == 1);
  return keys;
}

const std::vector<std::string> kAll = {"drop.a", "drop.bb", "keep"};
const std::vector<std::string> kKept = {"keep"};

// After a crash: every step whole, GC cleans up once, the store is writable.
void CheckStore(const std::string& root, bool into_new_step, bool published) {
  auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false}));
  const std::vector<uint64_t> steps = ValueOrDie(store->Steps());
  if (into_new_step) {
    CHECK(steps == (published ? std::vector<uint64_t>{1, 2} : std::vector<uint64_t>{1}));
    CHECK(LoadsWhole(store.get(), 1) == kAll);
    if (published) CHECK(LoadsWhole(store.get(), 2) == kKept);
  } else {
    CHECK(steps == std::vector<uint64_t>{1});
    CHECK(LoadsWhole(store.get(), 1) == (published ? kKept : kAll));
  }
  CHECK(ValueOrDie(store->LatestStep()) == std::optional<uint64_t>(steps.back()));
  GcOptions eager;
  eager.compact_dead_fraction = 0;
  GcReport first, second;
  REQUIRE_OK(store->CollectGarbage(&first, eager));
  for (uint64_t s : steps) LoadsWhole(store.get(), s);
  REQUIRE_OK(store->CollectGarbage(&second, eager));
  CHECK(second.generations_removed == 0);
  CHECK(second.records_removed == 0);
  CHECK(second.temporary_files_removed == 0);
  for (const auto& e : std::filesystem::directory_iterator(storage::StepsDir(root))) {
    CHECK(e.path().filename().string().rfind(".tmp", 0) != 0);
  }
}

TEST_CASE("remove tensors child", "[.child]") {
  const char* root = std::getenv("DCP_REMOVE_ROOT");
  if (root == nullptr) return;
  const char* into = std::getenv("DCP_REMOVE_INTO");
  RemoveTensorsOptions options;
  if (into != nullptr && *into != '\0') options.into_step = std::strtoull(into, nullptr, 10);
  auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false}));
  const auto removed = store->RemoveTensors(1, "drop.", options);
  REQUIRE_OK(removed.status());
}

TEST_CASE("removing tensors killed at each crash point leaves every step whole", "[crash]") {
  for (const bool into_new_step : {false, true}) {
    for (const std::string point : {"remove.before_publish", "publish.after_manifest"}) {
      INFO((into_new_step ? "into step 2, " : "in place, ") << "killed at " << point);
      testing::TempDir dir;
      const std::string root = dir.Sub("store");
      SaveStep1(root);
      const std::vector<std::string> env = {"DCP_REMOVE_ROOT=" + root,
                                            std::string("DCP_REMOVE_INTO=") + (into_new_step ? "2" : "")};
      std::vector<std::string> crash = env;
      crash.push_back("DCP_CRASH_POINTS=" + point);
      CHECK(RunChild(crash));  // the point was reached
      const bool published = point == "publish.after_manifest";
      CheckStore(root, into_new_step, published);
      // Running the removal again completes it (in place, once published,
      // there is nothing left to remove).
      if (!published || into_new_step) {
        if (into_new_step && published) {
          auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false}));
          REQUIRE_THAT(store->RemoveTensors(1, "drop.", {.into_step = 2}).status(),
                       testing::StatusIs(StatusCode::kAlreadyExists, "step 2 already exists"));
        } else {
          CHECK_FALSE(RunChild(env));
          CheckStore(root, into_new_step, /*published=*/true);
        }
      }
    }
  }
}

}  // namespace
}  // namespace dcp
