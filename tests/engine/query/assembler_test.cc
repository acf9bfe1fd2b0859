// Copyright (c) dcp authors.

#include "engine/query/assembler.h"

#include <catch2/catch.hpp>

#include <random>

#include "tests/engine/query/query_fixture.h"

namespace dcp::query {
namespace {

using testing::StatusIs;

Status Load(StepFixture& f, const Box& region, testing::HostTensor* out) {
  auto index = f.Index();
  ReadPlanner planner(index.get());
  DCP_RETURN_IF_ERROR(planner.Add("w", DType::kFloat32, {12, 6}, region, out->view(), "w"));
  StoreSet stores(f.root, nullptr, &f.memory);
  LoadOptions opts;
  opts.read_threads = 3;
  opts.max_inflight_bytes = 1;  // one chunk at a time: the bound must not deadlock
  return ExecuteReadPlan(&stores, f.generation, planner.Finish(), opts);
}

TEST_CASE("the assembler fills any region from both rank stores", "[query]") {
  StepFixture f;
  std::mt19937 rng(3);
  for (int i = 0; i < 30; ++i) {
    const int64_t r0 = std::uniform_int_distribution<int64_t>(0, 11)(rng);
    const int64_t c0 = std::uniform_int_distribution<int64_t>(0, 5)(rng);
    const Box region{{r0, c0},
                     {std::uniform_int_distribution<int64_t>(1, 12 - r0)(rng),
                      std::uniform_int_distribution<int64_t>(1, 6 - c0)(rng)}};
    testing::HostTensor out(DType::kFloat32, region.shape);
    REQUIRE_OK(Load(f, region, &out));
    CHECK(testing::CheckRegion("w", {12, 6}, region, out.view()) == "");
  }
}

TEST_CASE("a record that does not match the manifest is data loss", "[query]") {
  StepFixture f;
  // Rows 9..12 sit on rank store 1; claim another checksum for that chunk.
  for (auto& c : f.m->tensors[1].chunks) {
    if (c.box.origin == Shape{9, 0}) c.record.checksum.lo ^= 1;
  }
  testing::HostTensor out(DType::kFloat32, {12, 6});
  const Status s = Load(f, Box{{0, 0}, {12, 6}}, &out);
  // The message names the chunk, the rank store and its path.
  REQUIRE_THAT(s, StatusIs(StatusCode::kDataLoss, "tensor 'w' chunk at offset (9, 0) in rank store 1 at '" +
                                                      storage::RankStorePath(f.root, 1) +
                                                      "' does not match the manifest"));
}

TEST_CASE("a missing record or rank store is data loss naming it", "[query]") {
  StepFixture f;
  for (auto& c : f.m->tensors[1].chunks) {
    if (c.box.origin == Shape{3, 0}) c.record.generation = 0x999;
  }
  testing::HostTensor out(DType::kFloat32, {12, 6});
  REQUIRE_THAT(Load(f, Box{{0, 0}, {12, 6}}, &out),
               StatusIs(StatusCode::kDataLoss, "tensor 'w' chunk at offset (3, 0) in rank store 0 is missing"));

  StepFixture g;
  for (auto& c : g.m->tensors[1].chunks) c.record.store_rank = 7;
  testing::HostTensor rows(DType::kFloat32, {2, 6});
  REQUIRE_THAT(Load(g, Box{{0, 0}, {2, 6}}, &rows),
               StatusIs(StatusCode::kDataLoss, "in rank store 7 is missing: rank store 7 at '"));
}

TEST_CASE("0-d tensors and objects", "[query]") {
  StepFixture f;
  auto index = f.Index();
  ReadPlanner planner(index.get());
  testing::HostTensor s(DType::kInt64, {});
  REQUIRE_OK(planner.Add("s", DType::kInt64, {}, Box{}, s.view(), "s"));
  StoreSet stores(f.root, nullptr, &f.memory);
  REQUIRE_OK(ExecuteReadPlan(&stores, f.generation, planner.Finish(), LoadOptions()));
  CHECK(testing::CheckRegion("s", {}, Box{}, s.view()) == "");
}

TEST_CASE("reads split into tasks: large records alone, small neighbours of one store in bounded runs", "[query]") {
  // Stored sizes, and the store of each item (sorted by store).
  const std::vector<uint64_t> sizes = {100, 200, 2 << 20, 300, 400000, 400000, 400000, 50, 60};
  const std::vector<int> stores = {0, 0, 0, 0, 0, 0, 0, 1, 1};
  auto split = [&](uint64_t inflight) {
    std::vector<std::pair<size_t, size_t>> got;
    for (const TaskRange& r : SplitIntoTasks(
             sizes.size(), inflight, [&](size_t i) { return sizes[i]; },
             [&](size_t i) { return stores[i] == stores[i - 1]; })) {
      uint64_t stored = 0;
      for (size_t i = r.begin; i < r.end; ++i) stored += sizes[i];
      CHECK(r.stored == stored);
      CHECK((r.readahead == 0) == (sizes[r.begin] >= (1 << 20)));  // only a large record is read alone
      got.emplace_back(r.begin, r.end);
    }
    return got;
  };
  // The 2 MiB record alone; runs of up to 1 MiB; the store changes between 6 and 7.
  CHECK(split(256 << 20) == std::vector<std::pair<size_t, size_t>>{{0, 2}, {2, 3}, {3, 6}, {6, 7}, {7, 9}});
  // A small budget makes the runs shorter (a quarter of it each, at least one record).
  CHECK(split(1 << 20) == std::vector<std::pair<size_t, size_t>>{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7},
                                                                 {7, 9}});
  // At most 256 records a run.
  const std::vector<uint64_t> many(600, 10);
  const auto runs = SplitIntoTasks(many.size(), 256 << 20, [&](size_t i) { return many[i]; }, [](size_t) { return true; });
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].end == 256);
  CHECK(runs[2].end == 600);
}

}  // namespace
}  // namespace dcp::query
