// Copyright (c) dcp authors.
//
// The schedule of a read-once load (LoadOptions::read_once): which rank reads
// each chunk that several ranks need, and in which exchange round its record
// travels to the others. Pure: every rank computes it from the same inputs
// (every rank's needs, the step manifest's record sizes, one budget) and so
// gets the same schedule with no further agreement.
//
// Chunks are named by their ordinal in the step manifest (tensors in
// manifest order, then chunks in order): identical on every rank, since
// every rank decodes the same manifest bytes.
//
// Readers. A chunk needed by one rank is read by it ("direct"). A chunk
// needed by several ("shared") is read by one of its needers and sent to the
// others. Shared chunks are assigned greedily, as the reference's
// distribute_shards_to_ranks: in order of (number of needers, -stored bytes,
// ordinal), each to the needer with the fewest bytes to read so far (direct
// bytes included), ties to the lower rank.
//
// Rounds. Shared chunks are exchanged in rounds (one all-to-all each). The
// exchange order interleaves readers (each reader's first chunk, then each
// one's second, ...; a reader's chunks in ordinal order, i.e. in record order
// within a tensor), so that every rank reads in every round. A round is the
// longest run of that order in which no rank holds more than `round_budget`
// bytes: a reader holds a chunk's record plus one copy per receiver, a
// receiver one copy. The first chunk of a round is always admitted, so a
// chunk larger than the budget still travels; its ranks then hold nothing
// else in that round.
//
// Thread safety: pure functions and value types.

#ifndef DCP_ENGINE_QUERY_READ_ONCE_SCHEDULE_H_
#define DCP_ENGINE_QUERY_READ_ONCE_SCHEDULE_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace dcp::query {

using ChunkOrdinal = uint64_t;

struct SharedChunk {
  ChunkOrdinal chunk = 0;
  uint64_t bytes = 0;          // stored (record) bytes
  int reader = 0;              // reads it from its rank store
  std::vector<int> receivers;  // the other needers, ascending
};

struct ReadOnceSchedule {
  // Element r: the chunks rank r needs alone and reads itself, ascending.
  std::vector<std::vector<ChunkOrdinal>> direct;
  // Shared chunks in exchange order; round k is
  // shared[round_end[k-1], round_end[k]) (round_end[-1] = 0).
  std::vector<SharedChunk> shared;
  std::vector<size_t> round_end;
  // Element r: stored bytes rank r reads from the rank stores (direct and
  // shared).
  std::vector<uint64_t> read_bytes;

  size_t rounds() const { return round_end.size(); }
  size_t round_begin(size_t k) const { return k == 0 ? 0 : round_end[k - 1]; }
};

// `needs[r]` is the set of chunks rank r needs (ascending, no repeats);
// `bytes(c)` the stored size of chunk c. REQUIRES: needs is not empty.
ReadOnceSchedule PlanReadOnce(const std::vector<std::vector<ChunkOrdinal>>& needs,
                              const std::function<uint64_t(ChunkOrdinal)>& bytes, uint64_t round_budget);

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_READ_ONCE_SCHEDULE_H_
