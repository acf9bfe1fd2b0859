// Copyright (c) dcp authors.
//
// Crash consistency: the writer (crash_writer) is killed with SIGKILL at
// every named crash point, and at random moments; after each kill the
// checker must find every committed step loadable bit-exact, the store
// reopenable, and no leftovers after garbage collection; then the writer must
// be able to go on.
//
// DCP_CRASH_TRIALS sets the number of random kills (default 6; the `slow`
// test runs 100).

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tests/crash/child_process.h"
#include "tests/testing/temp_dir.h"

namespace {

using Outcome = dcp::testing::ChildOutcome;

// Runs `argv`, optionally with DCP_CRASH_POINTS set, optionally killed after
// `kill_after_ms`.
Outcome Run(std::vector<std::string> argv, const std::string& crash_points = "", int kill_after_ms = -1) {
  std::vector<std::string> env;
  if (!crash_points.empty()) env.push_back("DCP_CRASH_POINTS=" + crash_points);
  return dcp::testing::RunChild(argv, env, kill_after_ms);
}

int Check(const std::string& root) {
  const Outcome o = Run({DCP_CRASH_WRITER, "check", root});
  return o.exit_code;
}

TEST_CASE("killed at every named crash point, the store stays consistent", "[crash]") {
  // name#hit@rank: the hit makes the writer get past its first steps.
  const std::vector<std::string> points = {
      "put.validate#3",       "put.before_ingest#4@1",  "put.after_ingest#4@0", "put.after_ingest#5@1",
      "put.before_publish#3", "publish.after_manifest#3", "delete.after_unlink#1", "gc.after_drop#2@0",
      "gc.after_drop#1@1",    "gc.after_rewrite#1@0",   "put.after_ingest#9@0"};
  for (const std::string& point : points) {
    INFO("crash point " << point);
    dcp::testing::TempDir dir;
    const std::string root = dir.Sub("store");
    const Outcome killed = Run({DCP_CRASH_WRITER, "run", root, "12"}, point);
    CHECK(killed.killed);  // the point was reached
    CHECK(Check(root) == 0);
    const Outcome resumed = Run({DCP_CRASH_WRITER, "run", root, "3"});
    CHECK(resumed.exit_code == 0);
    CHECK(Check(root) == 0);
  }
}

TEST_CASE("killed twice in garbage collection: mid-rewrite, then mid-drop of what it left", "[crash]") {
  // The first kill leaves a generation's rewrite in RocksDB's log (replayed
  // into a level-0 file on reopen); once that generation is wholly dead, the
  // second kill interrupts dropping it after the range deletion.
  dcp::testing::TempDir dir;
  const std::string root = dir.Sub("store");
  CHECK(Run({DCP_CRASH_WRITER, "run", root, "12"}, "gc.after_rewrite#1@0").killed);
  const Outcome second = Run({DCP_CRASH_WRITER, "run", root, "12"}, "gc.after_range_delete#1@0");
  CHECK(Check(root) == 0);
  CHECK(Run({DCP_CRASH_WRITER, "run", root, "3"}).exit_code == 0);
  CHECK(Check(root) == 0);
  WARN("second run " << (second.killed ? "was killed at gc.after_range_delete" : "did not reach it"));
}

TEST_CASE("killed with SIGKILL at random moments, the store stays consistent", "[crash]") {
  const char* env = std::getenv("DCP_CRASH_TRIALS");
  const int trials = env != nullptr ? std::atoi(env) : 6;
  dcp::testing::TempDir dir;
  const std::string root = dir.Sub("store");
  std::mt19937 rng(12345);
  int killed = 0, finished = 0;
  for (int t = 0; t < trials; ++t) {
    INFO("trial " << t);
    const int delay = std::uniform_int_distribution<int>(30, 900)(rng);
    const Outcome o = Run({DCP_CRASH_WRITER, "run", root, "1000"}, "", delay);
    killed += o.killed;
    finished += o.exit_code == 0;
    REQUIRE(Check(root) == 0);
  }
  WARN("random kills: " << trials << " trials, " << killed << " killed mid-run, all consistent");
  CHECK(killed + finished == trials);
}

#ifdef DCP_MPIEXEC
TEST_CASE("one MPI rank killed mid-put leaves the store consistent", "[crash][mpi]") {
  dcp::testing::TempDir dir;
  const std::string root = dir.Sub("store");
  const Outcome o = Run({DCP_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2",
                         "-x", "DCP_CRASH_POINTS", DCP_CRASH_WRITER, "run", root, "12"},
                        "put.after_ingest#4@1");
  CHECK(o.exit_code != 0);  // mpirun reports the killed rank
  CHECK(Check(root) == 0);
  CHECK(Run({DCP_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2",
             DCP_CRASH_WRITER, "run", root, "3"})
            .exit_code == 0);
  CHECK(Check(root) == 0);
}
#endif

}  // namespace
