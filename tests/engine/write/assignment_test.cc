// Copyright (c) dcp authors.

#include "engine/write/assignment.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>

#include "engine/sharding/chunking.h"

namespace dcp::write {
namespace {

// A [rows, 4] float32 box at row `row0`; with chunk_bytes 16 one chunk per row.
HeldBox Rows(std::string_view key, int64_t row0, int64_t rows, bool main) {
  return HeldBox{key, Box{{row0, 0}, {rows, 4}}, 4, main};
}

TEST_CASE("data-parallel replicas split a box's chunks evenly", "[write]") {
  // Rank 0 holds the main replica of 8 rows; ranks 1..3 hold replicas.
  std::vector<std::vector<HeldBox>> held(4);
  for (int r = 0; r < 4; ++r) held[r].push_back(Rows("w", 0, 8, r == 0));
  const WriteAssignment a = WriteAssignment::Compute(held, 16);
  const std::vector<int>* w = a.Writers("w", Box{{0, 0}, {8, 4}});
  REQUIRE(w != nullptr);
  CHECK(*w == std::vector<int>{0, 1, 2, 3, 0, 1, 2, 3});
  CHECK(a.bytes_per_rank() == std::vector<uint64_t>(4, 32));
}

TEST_CASE("unshared boxes load their rank first", "[write]") {
  // Rank 0 alone holds 4 rows of "a"; ranks 0 and 1 both hold 6 rows of "b".
  std::vector<std::vector<HeldBox>> held(2);
  held[0] = {Rows("a", 0, 4, true), Rows("b", 0, 6, true)};
  held[1] = {Rows("b", 0, 6, false)};
  const WriteAssignment a = WriteAssignment::Compute(held, 16);
  CHECK(a.Writers("a", Box{{0, 0}, {4, 4}}) == nullptr);  // written whole by its main replica
  const std::vector<int>* w = a.Writers("b", Box{{0, 0}, {6, 4}});
  REQUIRE(w != nullptr);
  // Rank 1 takes chunks until it catches up with rank 0's 64 bytes, then they alternate.
  CHECK(*w == std::vector<int>{1, 1, 1, 1, 0, 1});
  CHECK(a.bytes_per_rank() == std::vector<uint64_t>{80, 80});
}

TEST_CASE("boxes with fewer holders and larger chunks are placed first", "[write]") {
  // "x" (2 rows) is held by ranks 0 and 1, "y" (1 row of 8) by 0, 1 and 2.
  std::vector<std::vector<HeldBox>> held(3);
  const HeldBox y{"y", Box{{0, 0}, {1, 8}}, 4, false};
  held[0] = {Rows("x", 0, 2, true), HeldBox{"y", y.box, 4, true}};
  held[1] = {Rows("x", 0, 2, false), y};
  held[2] = {y};
  const WriteAssignment a = WriteAssignment::Compute(held, 32);
  // Chunks: x is one 32-byte chunk (2 rows of 16), y one 32-byte chunk.
  // x (two holders) goes first, to rank 0; y then to rank 1.
  REQUIRE(a.Writers("x", Box{{0, 0}, {2, 4}}) != nullptr);
  CHECK(*a.Writers("x", Box{{0, 0}, {2, 4}}) == std::vector<int>{0});
  CHECK(*a.Writers("y", y.box) == std::vector<int>{1});
  CHECK(a.bytes_per_rank() == std::vector<uint64_t>{32, 32, 0});
}

TEST_CASE("boxes without a main replica, or held by one rank, are not assigned", "[write]") {
  std::vector<std::vector<HeldBox>> held(3);
  held[0] = {Rows("only", 0, 2, true)};
  held[1] = {Rows("orphan", 0, 2, false)};
  held[2] = {Rows("orphan", 0, 2, false), Rows("empty", 0, 0, true)};
  held[1].push_back(Rows("empty", 0, 0, false));
  const WriteAssignment a = WriteAssignment::Compute(held, 16);
  CHECK(a.Writers("only", Box{{0, 0}, {2, 4}}) == nullptr);
  CHECK(a.Writers("orphan", Box{{0, 0}, {2, 4}}) == nullptr);
  CHECK(a.Writers("empty", Box{{0, 0}, {0, 4}}) == nullptr);
  CHECK(a.bytes_per_rank() == std::vector<uint64_t>{32, 0, 0});
}

TEST_CASE("a replica of another box does not hold this one", "[write]") {
  // Ranks 0 and 1 are main replicas of rows 0-2 and 2-4; rank 2 replicates
  // only rows 0-2, so only that box is shared.
  std::vector<std::vector<HeldBox>> held(3);
  held[0] = {Rows("w", 0, 2, true)};
  held[1] = {Rows("w", 2, 2, true)};
  held[2] = {Rows("w", 0, 2, false)};
  const WriteAssignment a = WriteAssignment::Compute(held, 16);
  CHECK(a.Writers("w", Box{{2, 0}, {2, 4}}) == nullptr);
  REQUIRE(a.Writers("w", Box{{0, 0}, {2, 4}}) != nullptr);
  CHECK(*a.Writers("w", Box{{0, 0}, {2, 4}}) == std::vector<int>{0, 2});
}

TEST_CASE("property: every chunk goes to a holder, bytes add up, order does not matter", "[write]") {
  std::mt19937 rng(17);
  for (int iter = 0; iter < 100; ++iter) {
    const int ranks = std::uniform_int_distribution<int>(1, 8)(rng);
    const int boxes = std::uniform_int_distribution<int>(1, 12)(rng);
    const uint64_t chunk_bytes = std::uniform_int_distribution<uint64_t>(1, 200)(rng);
    std::vector<std::string> keys;
    for (int b = 0; b < boxes; ++b) keys.push_back("k" + std::to_string(b % 3));
    std::vector<std::vector<HeldBox>> held(static_cast<size_t>(ranks));
    uint64_t total = 0;
    for (int b = 0; b < boxes; ++b) {
      const Box box{{b * 100, 0}, {std::uniform_int_distribution<int64_t>(1, 9)(rng), 3}};
      const uint32_t elem = std::vector<uint32_t>{1, 2, 4, 8}[b % 4];
      const int main = std::uniform_int_distribution<int>(0, ranks - 1)(rng);
      held[static_cast<size_t>(main)].push_back({keys[b], box, elem, true});
      total += static_cast<uint64_t>(box.num_elements()) * elem;
      for (int r = 0; r < ranks; ++r) {
        if (r != main && std::bernoulli_distribution(0.5)(rng)) held[static_cast<size_t>(r)].push_back({keys[b], box, elem, false});
      }
    }
    const WriteAssignment a = WriteAssignment::Compute(held, chunk_bytes);
    INFO("iteration " << iter);
    CHECK(std::accumulate(a.bytes_per_rank().begin(), a.bytes_per_rank().end(), uint64_t{0}) == total);
    for (int r = 0; r < ranks; ++r) {
      for (const HeldBox& h : held[static_cast<size_t>(r)]) {
        const std::vector<int>* w = a.Writers(h.key, h.box);
        if (w == nullptr) continue;
        const auto chunks = sharding::ChunkBox(h.box, h.elem_size, std::max<uint64_t>(chunk_bytes, h.elem_size));
        REQUIRE(w->size() == chunks.size());
        for (int writer : *w) {
          // The writer holds this box.
          const auto& mine = held[static_cast<size_t>(writer)];
          CHECK(std::any_of(mine.begin(), mine.end(), [&](const HeldBox& x) { return x.key == h.key && x.box == h.box; }));
        }
      }
    }
    // Shuffling each rank's list changes nothing.
    auto shuffled = held;
    for (auto& v : shuffled) std::shuffle(v.begin(), v.end(), rng);
    const WriteAssignment b = WriteAssignment::Compute(shuffled, chunk_bytes);
    CHECK(b.bytes_per_rank() == a.bytes_per_rank());
    for (const auto& v : held) {
      for (const HeldBox& h : v) {
        const auto* x = a.Writers(h.key, h.box);
        const auto* y = b.Writers(h.key, h.box);
        REQUIRE((x == nullptr) == (y == nullptr));
        if (x != nullptr) CHECK(*x == *y);
      }
    }
  }
}

TEST_CASE("fully replicated state: per-rank bytes within one chunk of the mean", "[write]") {
  // 16 boxes of 10 rows, each held by all 4 ranks, main replica on rank 0.
  std::vector<std::vector<HeldBox>> held(4);
  std::vector<std::string> keys;
  for (int b = 0; b < 16; ++b) keys.push_back("layer" + std::to_string(b));
  for (int r = 0; r < 4; ++r) {
    for (int b = 0; b < 16; ++b) held[r].push_back(Rows(keys[b], 0, 10, r == 0));
  }
  const WriteAssignment a = WriteAssignment::Compute(held, 48);  // chunks of 3, 3, 2, 2 rows
  const auto& bytes = a.bytes_per_rank();
  const uint64_t max = *std::max_element(bytes.begin(), bytes.end());
  const uint64_t min = *std::min_element(bytes.begin(), bytes.end());
  CHECK(max - min <= 48);
  CHECK(std::accumulate(bytes.begin(), bytes.end(), uint64_t{0}) == 16 * 10 * 16);
}

}  // namespace
}  // namespace dcp::write
