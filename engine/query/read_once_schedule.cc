// Copyright (c) dcp authors.

#include "engine/query/read_once_schedule.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace dcp::query {

ReadOnceSchedule PlanReadOnce(const std::vector<std::vector<ChunkOrdinal>>& needs,
                              const std::function<uint64_t(ChunkOrdinal)>& bytes, uint64_t round_budget) {
  const int n = static_cast<int>(needs.size());
  ReadOnceSchedule s;
  s.direct.resize(static_cast<size_t>(n));
  s.read_bytes.assign(static_cast<size_t>(n), 0);

  // (chunk, needer) pairs, grouped by chunk; needers ascending within a chunk.
  std::vector<std::pair<ChunkOrdinal, int>> all;
  size_t total = 0;
  for (const auto& v : needs) total += v.size();
  all.reserve(total);
  for (int r = 0; r < n; ++r) {
    for (ChunkOrdinal c : needs[static_cast<size_t>(r)]) all.emplace_back(c, r);
  }
  std::sort(all.begin(), all.end());

  std::vector<SharedChunk> shared;
  for (size_t i = 0; i < all.size();) {
    size_t j = i + 1;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const ChunkOrdinal c = all[i].first;
    if (j - i == 1) {
      const int r = all[i].second;
      s.direct[static_cast<size_t>(r)].push_back(c);
      s.read_bytes[static_cast<size_t>(r)] += bytes(c);
    } else {
      SharedChunk sc;
      sc.chunk = c;
      sc.bytes = bytes(c);
      for (size_t k = i; k < j; ++k) sc.receivers.push_back(all[k].second);  // all needers, for now
      shared.push_back(std::move(sc));
    }
    i = j;
  }

  // Readers: fewest needers first, then largest, then by ordinal; each to the
  // needer with the fewest bytes to read so far (then the lower rank).
  std::sort(shared.begin(), shared.end(), [](const SharedChunk& a, const SharedChunk& b) {
    return std::make_tuple(a.receivers.size(), b.bytes, a.chunk) <
           std::make_tuple(b.receivers.size(), a.bytes, b.chunk);
  });
  std::vector<std::vector<size_t>> by_reader(static_cast<size_t>(n));
  for (size_t i = 0; i < shared.size(); ++i) {
    SharedChunk& sc = shared[i];
    auto best = sc.receivers.begin();
    for (auto it = sc.receivers.begin(); it != sc.receivers.end(); ++it) {
      if (s.read_bytes[static_cast<size_t>(*it)] < s.read_bytes[static_cast<size_t>(*best)]) best = it;
    }
    sc.reader = *best;
    sc.receivers.erase(best);
    s.read_bytes[static_cast<size_t>(sc.reader)] += sc.bytes;
    by_reader[static_cast<size_t>(sc.reader)].push_back(i);
  }

  // Exchange order: readers interleaved, each reader's chunks by ordinal.
  for (auto& v : by_reader) {
    std::sort(v.begin(), v.end(), [&](size_t a, size_t b) { return shared[a].chunk < shared[b].chunk; });
  }
  s.shared.reserve(shared.size());
  for (size_t i = 0; s.shared.size() < shared.size(); ++i) {
    for (const auto& v : by_reader) {
      if (i < v.size()) s.shared.push_back(std::move(shared[v[i]]));
    }
  }

  // Rounds: the longest runs within the per-rank budget.
  std::vector<uint64_t> load(static_cast<size_t>(n), 0);
  std::vector<int> touched;
  bool empty_round = true;
  for (size_t i = 0; i < s.shared.size(); ++i) {
    const SharedChunk& sc = s.shared[i];
    const uint64_t reader_cost = sc.bytes * (1 + sc.receivers.size());
    bool fits = load[static_cast<size_t>(sc.reader)] + reader_cost <= round_budget;
    for (int r : sc.receivers) fits = fits && load[static_cast<size_t>(r)] + sc.bytes <= round_budget;
    if (!fits && !empty_round) {
      s.round_end.push_back(i);
      for (int r : touched) load[static_cast<size_t>(r)] = 0;
      touched.clear();
    }
    load[static_cast<size_t>(sc.reader)] += reader_cost;
    touched.push_back(sc.reader);
    for (int r : sc.receivers) {
      load[static_cast<size_t>(r)] += sc.bytes;
      touched.push_back(r);
    }
    empty_round = false;
  }
  if (!s.shared.empty()) s.round_end.push_back(s.shared.size());
  return s;
}

}  // namespace dcp::query
