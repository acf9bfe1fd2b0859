// Copyright (c) dcp authors.

#include "engine/query/read_once_schedule.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace dcp::query {
namespace {

using Needs = std::vector<std::vector<ChunkOrdinal>>;

// Per-rank bytes held in round k (reader: record + one copy per receiver),
// and the number of the round's chunks each rank takes part in.
std::vector<uint64_t> RoundLoad(const ReadOnceSchedule& s, size_t k, int ranks, std::vector<int>* involved = nullptr) {
  std::vector<uint64_t> load(static_cast<size_t>(ranks), 0);
  if (involved != nullptr) involved->assign(static_cast<size_t>(ranks), 0);
  for (size_t i = s.round_begin(k); i < s.round_end[k]; ++i) {
    const SharedChunk& c = s.shared[i];
    load[static_cast<size_t>(c.reader)] += c.bytes * (1 + c.receivers.size());
    for (int r : c.receivers) load[static_cast<size_t>(r)] += c.bytes;
    if (involved != nullptr) {
      ++(*involved)[static_cast<size_t>(c.reader)];
      for (int r : c.receivers) ++(*involved)[static_cast<size_t>(r)];
    }
  }
  return load;
}

// Checks every invariant of a schedule against its inputs; "" if all hold.
std::string CheckSchedule(const Needs& needs, const std::function<uint64_t(ChunkOrdinal)>& bytes, uint64_t budget,
                          const ReadOnceSchedule& s) {
  const int n = static_cast<int>(needs.size());
  std::map<ChunkOrdinal, std::vector<int>> needers;
  for (int r = 0; r < n; ++r) {
    for (ChunkOrdinal c : needs[static_cast<size_t>(r)]) needers[c].push_back(r);
  }
  std::vector<uint64_t> read(static_cast<size_t>(n), 0);
  std::set<ChunkOrdinal> seen;
  for (int r = 0; r < n; ++r) {
    const auto& d = s.direct[static_cast<size_t>(r)];
    if (!std::is_sorted(d.begin(), d.end())) return "direct reads of a rank are not ascending";
    for (ChunkOrdinal c : d) {
      if (needers[c] != std::vector<int>{r}) return "chunk " + std::to_string(c) + " is direct but shared";
      if (!seen.insert(c).second) return "chunk " + std::to_string(c) + " scheduled twice";
      read[static_cast<size_t>(r)] += bytes(c);
    }
  }
  for (const SharedChunk& c : s.shared) {
    std::vector<int> all = c.receivers;
    all.push_back(c.reader);
    std::sort(all.begin(), all.end());
    if (!std::is_sorted(c.receivers.begin(), c.receivers.end())) return "receivers not ascending";
    if (all != needers[c.chunk] || all.size() < 2) return "wrong needers for chunk " + std::to_string(c.chunk);
    if (c.bytes != bytes(c.chunk)) return "wrong size";
    if (!seen.insert(c.chunk).second) return "chunk " + std::to_string(c.chunk) + " scheduled twice";
    read[static_cast<size_t>(c.reader)] += c.bytes;
  }
  if (seen.size() != needers.size()) return "a needed chunk is not scheduled";
  if (read != s.read_bytes) return "read_bytes disagrees with the assignment";
  // Rounds: contiguous, non-empty, within budget unless alone, and maximal.
  if (s.shared.empty() != s.round_end.empty()) return "rounds without chunks or chunks without rounds";
  for (size_t k = 0; k < s.rounds(); ++k) {
    if (s.round_end[k] <= s.round_begin(k)) return "empty round " + std::to_string(k);
    std::vector<int> involved;
    const auto load = RoundLoad(s, k, n, &involved);
    for (int r = 0; r < n; ++r) {
      // Over the budget only with a single chunk that is larger than it.
      if (load[static_cast<size_t>(r)] > budget && involved[static_cast<size_t>(r)] > 1) {
        return "round " + std::to_string(k) + " exceeds the budget on rank " + std::to_string(r);
      }
    }
    if (k + 1 < s.rounds()) {
      // The next round's first chunk would not have fit.
      const SharedChunk& next = s.shared[s.round_end[k]];
      bool fits = load[static_cast<size_t>(next.reader)] + next.bytes * (1 + next.receivers.size()) <= budget;
      for (int r : next.receivers) fits = fits && load[static_cast<size_t>(r)] + next.bytes <= budget;
      if (fits) return "round " + std::to_string(k) + " closed early";
    }
  }
  if (!s.round_end.empty() && s.round_end.back() != s.shared.size()) return "rounds do not end at the last chunk";
  return "";
}

TEST_CASE("chunks one rank needs are direct; shared ones go to the least-loaded needer", "[query]") {
  // Rank 0 needs 0,1,2; rank 1 needs 1,2,3; rank 2 needs 2. Sizes 10 each.
  const Needs needs = {{0, 1, 2}, {1, 2, 3}, {2}};
  auto bytes = [](ChunkOrdinal) { return uint64_t{10}; };
  const ReadOnceSchedule s = PlanReadOnce(needs, bytes, 1000);
  CHECK(CheckSchedule(needs, bytes, 1000, s) == "");
  CHECK(s.direct == std::vector<std::vector<ChunkOrdinal>>{{0}, {3}, {}});
  REQUIRE(s.shared.size() == 2);
  // Chunk 1 (two needers) first: ranks 0 and 1 have 10 each, the tie goes to
  // rank 0. Chunk 2 (three needers): rank 2 has read nothing.
  std::map<ChunkOrdinal, int> reader;
  for (const auto& c : s.shared) reader[c.chunk] = c.reader;
  CHECK(reader[1] == 0);
  CHECK(reader[2] == 2);
  CHECK(s.read_bytes == std::vector<uint64_t>{20, 10, 10});
  CHECK(s.rounds() == 1);
}

TEST_CASE("direct bytes count when choosing a reader", "[query]") {
  // Rank 0 reads a large chunk alone; the shared ones all go to rank 1 until
  // it has as much.
  const Needs needs = {{0, 1, 2, 3}, {1, 2, 3}};
  auto bytes = [](ChunkOrdinal c) { return c == 0 ? uint64_t{100} : uint64_t{30}; };
  const ReadOnceSchedule s = PlanReadOnce(needs, bytes, 1 << 20);
  CHECK(CheckSchedule(needs, bytes, 1 << 20, s) == "");
  for (const auto& c : s.shared) CHECK(c.reader == 1);
  CHECK(s.read_bytes == std::vector<uint64_t>{100, 90});
}

TEST_CASE("larger shared chunks are placed first", "[query]") {
  // Two ranks need chunks of 5, 50 and 6 bytes: 50 goes first (to rank 0),
  // then 6 and 5 to rank 1.
  const Needs needs = {{0, 1, 2}, {0, 1, 2}};
  auto bytes = [](ChunkOrdinal c) { return std::vector<uint64_t>{5, 50, 6}[c]; };
  const ReadOnceSchedule s = PlanReadOnce(needs, bytes, 1 << 20);
  CHECK(CheckSchedule(needs, bytes, 1 << 20, s) == "");
  CHECK(s.read_bytes == std::vector<uint64_t>{50, 11});
}

TEST_CASE("replicas split the reading evenly and readers interleave in the exchange order", "[query]") {
  // Four data-parallel ranks all need the same 40 equal chunks.
  Needs needs(4);
  for (auto& v : needs) {
    for (ChunkOrdinal c = 0; c < 40; ++c) v.push_back(c);
  }
  auto bytes = [](ChunkOrdinal) { return uint64_t{8}; };
  const uint64_t budget = 112;
  const ReadOnceSchedule s = PlanReadOnce(needs, bytes, budget);
  CHECK(CheckSchedule(needs, bytes, budget, s) == "");
  CHECK(s.read_bytes == std::vector<uint64_t>(4, 80));
  for (size_t i = 0; i + 1 < s.shared.size(); ++i) {
    CHECK(s.shared[i].reader != s.shared[i + 1].reader);
  }
  // Each rank holds 32 bytes per chunk it reads and 8 per chunk it receives,
  // so 56 per cycle of four chunks (one per reader): two cycles fit in 112.
  CHECK(s.rounds() == 5);
}

TEST_CASE("a budget smaller than any chunk gives one chunk per round", "[query]") {
  const Needs needs = {{0, 1, 2}, {0, 1, 2}, {2}};
  auto bytes = [](ChunkOrdinal) { return uint64_t{64}; };
  const ReadOnceSchedule s = PlanReadOnce(needs, bytes, 1);
  CHECK(CheckSchedule(needs, bytes, 1, s) == "");
  CHECK(s.rounds() == 3);
}

TEST_CASE("no shared chunks: no rounds", "[query]") {
  const Needs needs = {{0, 2}, {1}, {}};
  auto bytes = [](ChunkOrdinal) { return uint64_t{1}; };
  const ReadOnceSchedule s = PlanReadOnce(needs, bytes, 10);
  CHECK(CheckSchedule(needs, bytes, 10, s) == "");
  CHECK(s.rounds() == 0);
  CHECK(s.shared.empty());
  CHECK(s.read_bytes == std::vector<uint64_t>{2, 1, 0});
}

TEST_CASE("random needs: every invariant holds and the schedule is deterministic", "[query]") {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 200; ++iter) {
    const int ranks = std::uniform_int_distribution<int>(1, 9)(rng);
    const int chunks = std::uniform_int_distribution<int>(0, 60)(rng);
    std::vector<uint64_t> sizes(static_cast<size_t>(chunks));
    for (auto& b : sizes) b = std::uniform_int_distribution<uint64_t>(1, 1000)(rng);
    Needs needs(static_cast<size_t>(ranks));
    const double p = std::uniform_real_distribution<double>(0.05, 0.9)(rng);
    for (int r = 0; r < ranks; ++r) {
      for (int c = 0; c < chunks; ++c) {
        if (std::bernoulli_distribution(p)(rng)) needs[static_cast<size_t>(r)].push_back(static_cast<ChunkOrdinal>(c));
      }
    }
    const uint64_t budget = std::uniform_int_distribution<uint64_t>(1, 20000)(rng);
    auto bytes = [&](ChunkOrdinal c) { return sizes[c]; };
    const ReadOnceSchedule s = PlanReadOnce(needs, bytes, budget);
    INFO("iteration " << iter << ", " << ranks << " ranks, " << chunks << " chunks, budget " << budget);
    REQUIRE(CheckSchedule(needs, bytes, budget, s) == "");
    const ReadOnceSchedule again = PlanReadOnce(needs, bytes, budget);
    CHECK(again.round_end == s.round_end);
    CHECK(again.read_bytes == s.read_bytes);
    for (size_t i = 0; i < s.shared.size(); ++i) {
      CHECK(again.shared[i].chunk == s.shared[i].chunk);
      CHECK(again.shared[i].reader == s.shared[i].reader);
    }
  }
}

}  // namespace
}  // namespace dcp::query
