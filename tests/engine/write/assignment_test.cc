// Copyright (c) dcp authors.

#include "engine/write/assignment.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <map>

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

// The greedy as assignment.h states it, written plainly (every rank's list
// scanned for each chunk): the reference for the grouped, heap-based Compute.
struct Reference {
  std::map<std::pair<std::string, std::pair<Shape, Shape>>, std::vector<int>> writers;
  std::vector<uint64_t> bytes;
};
Reference PlainGreedy(const std::vector<std::vector<HeldBox>>& held, uint64_t chunk_bytes) {
  Reference ref;
  ref.bytes.assign(held.size(), 0);
  struct Group {
    const HeldBox* main = nullptr;
    int main_rank = -1;
    std::vector<int> holders;
  };
  std::map<std::pair<std::string, std::pair<Shape, Shape>>, Group> groups;  // sorted by key, origin, shape
  for (size_t r = 0; r < held.size(); ++r) {
    for (const HeldBox& h : held[r]) {
      if (h.box.num_elements() == 0) continue;
      Group& g = groups[{std::string(h.key), {h.box.origin, h.box.shape}}];
      if (g.holders.empty() || g.holders.back() != static_cast<int>(r)) g.holders.push_back(static_cast<int>(r));
      if (h.main && g.main == nullptr) {
        g.main = &h;
        g.main_rank = static_cast<int>(r);
      }
    }
  }
  struct Item {
    size_t holders, box, chunk;
    uint64_t bytes;
    std::vector<int>* writers;
    const std::vector<int>* candidates;
  };
  std::vector<Item> items;
  size_t u = 0;
  for (auto& [id, g] : groups) {
    if (g.main == nullptr) continue;
    if (g.holders.size() == 1) {
      ref.bytes[g.main_rank] += static_cast<uint64_t>(g.main->box.num_elements()) * g.main->elem_size;
      continue;
    }
    const auto chunks = sharding::ChunkBox(g.main->box, g.main->elem_size,
                                           std::max<uint64_t>(chunk_bytes, g.main->elem_size));
    std::vector<int>& w = ref.writers[id];
    w.assign(chunks.size(), -1);
    for (size_t c = 0; c < chunks.size(); ++c) {
      items.push_back({g.holders.size(), u, c, static_cast<uint64_t>(chunks[c].num_elements()) * g.main->elem_size,
                       &w, &g.holders});
    }
    ++u;
  }
  std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) {
    return std::make_tuple(x.holders, y.bytes, x.box, x.chunk) < std::make_tuple(y.holders, x.bytes, y.box, y.chunk);
  });
  for (const Item& it : items) {
    int best = (*it.candidates)[0];
    for (int r : *it.candidates) {
      if (ref.bytes[r] < ref.bytes[best]) best = r;
    }
    (*it.writers)[it.chunk] = best;
    ref.bytes[best] += it.bytes;
  }
  return ref;
}

void CheckSame(const WriteAssignment& a, const Reference& ref) {
  CHECK(a.bytes_per_rank() == ref.bytes);
  for (const auto& [id, w] : ref.writers) {
    const std::vector<int>* got = a.Writers(id.first, Box{id.second.first, id.second.second});
    REQUIRE(got != nullptr);
    CHECK(*got == w);
  }
}

TEST_CASE("property: long holder lists and boxes held as sets give the plain greedy's assignment", "[write]") {
  std::mt19937 rng(41);
  for (int iter = 0; iter < 40; ++iter) {
    // A model position's boxes: main on rank `dp0`, replicated by a data
    // parallel group; several positions, some boxes held by a few ranks only.
    const int groups = std::uniform_int_distribution<int>(1, 3)(rng);
    const int dp = std::uniform_int_distribution<int>(2, 40)(rng);  // 16+ holders use the heap
    const int ranks = groups * dp;
    const uint64_t chunk_bytes = std::uniform_int_distribution<uint64_t>(8, 64)(rng);
    std::vector<std::string> keys;
    for (int k = 0; k < 6; ++k) keys.push_back("k" + std::to_string(k));
    std::vector<std::vector<HeldBox>> own(static_cast<size_t>(ranks));  // main boxes and odd replicas
    std::vector<std::vector<HeldBox>> replicas(static_cast<size_t>(groups));  // held by dp-1 ranks each
    for (int g = 0; g < groups; ++g) {
      for (int b = 0; b < 5; ++b) {
        const Box box{{g * 1000 + b * 100, 0}, {std::uniform_int_distribution<int64_t>(1, 12)(rng), 2}};
        const uint32_t elem = std::vector<uint32_t>{1, 2, 4}[b % 3];
        const std::string_view key = keys[(g + b) % keys.size()];
        own[static_cast<size_t>(g * dp)].push_back({key, box, elem, true});
        replicas[static_cast<size_t>(g)].push_back({key, box, elem, false});
      }
      // A box only this group's first two ranks hold (a short list), and one
      // unshared box on each rank (its load before the greedy).
      const Box two{{g * 1000 + 900, 0}, {7, 2}};
      own[static_cast<size_t>(g * dp)].push_back({keys[0], two, 4, true});
      own[static_cast<size_t>(g * dp + 1)].push_back({keys[0], two, 4, false});
      for (int d = 0; d < dp; ++d) {
        const Box mine{{g * 1000 + 950 + d, 0}, {1, std::uniform_int_distribution<int64_t>(1, 30)(rng)}};
        own[static_cast<size_t>(g * dp + d)].push_back({keys[1], mine, 4, true});
      }
    }
    std::vector<HeldSet> sets;
    for (int r = 0; r < ranks; ++r) sets.push_back({&own[static_cast<size_t>(r)], {r}});
    std::vector<std::vector<HeldBox>> per_rank = own;
    for (int g = 0; g < groups; ++g) {
      std::vector<int> holders;
      for (int d = 1; d < dp; ++d) {
        holders.push_back(g * dp + d);
        auto& list = per_rank[static_cast<size_t>(g * dp + d)];
        list.insert(list.end(), replicas[static_cast<size_t>(g)].begin(), replicas[static_cast<size_t>(g)].end());
      }
      sets.push_back({&replicas[static_cast<size_t>(g)], holders});
    }
    std::shuffle(sets.begin(), sets.end(), rng);  // the order of sets does not matter
    INFO("iteration " << iter << ", " << groups << " groups of " << dp);
    const Reference ref = PlainGreedy(per_rank, chunk_bytes);
    CheckSame(WriteAssignment::Compute(per_rank, chunk_bytes), ref);
    CheckSame(WriteAssignment::Compute(sets, static_cast<size_t>(ranks), chunk_bytes), ref);
  }
}

}  // namespace
}  // namespace dcp::write
