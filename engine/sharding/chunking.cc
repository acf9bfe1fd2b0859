// Copyright (c) dcp authors.

#include "engine/sharding/chunking.h"

#include <algorithm>

namespace dcp::sharding {

std::vector<Box> ChunkBox(const Box& shard, size_t elem_size, uint64_t max_bytes) {
  std::vector<Box> chunks;
  const int rank = shard.rank();
  if (shard.num_elements() == 0) return chunks;
  if (rank == 0) {
    chunks.push_back(shard);
    return chunks;
  }
  // slab[k] = bytes of one index along axis k (all axes after k whole).
  std::vector<uint64_t> slab(static_cast<size_t>(rank));
  uint64_t s = elem_size;
  for (int k = rank - 1; k >= 0; --k) {
    slab[k] = s;
    s *= static_cast<uint64_t>(shard.shape[k]);
  }
  int k = 0;
  while (slab[k] > max_bytes) ++k;  // terminates: slab[rank-1] == elem_size
  const int64_t extent = shard.shape[k];
  const int64_t max_run = static_cast<int64_t>(std::max<uint64_t>(1, max_bytes / slab[k]));
  // Balanced: runs differ by at most one index, the longer ones first.
  const int64_t pieces = (extent + max_run - 1) / max_run;
  const int64_t base = extent / pieces;
  const int64_t longer = extent % pieces;

  // Odometer over axes [0, k) (single indices) and runs along axis k.
  std::vector<int64_t> idx(static_cast<size_t>(k), 0);
  for (;;) {
    int64_t start = 0;
    for (int64_t piece = 0; piece < pieces; ++piece) {
      const int64_t run = base + (piece < longer ? 1 : 0);
      Box c;
      c.origin = shard.origin;
      c.shape = shard.shape;
      for (int a = 0; a < k; ++a) {
        c.origin[a] += idx[a];
        c.shape[a] = 1;
      }
      c.origin[k] += start;
      c.shape[k] = run;
      chunks.push_back(std::move(c));
      start += run;
    }
    int a = k;
    for (;;) {
      if (a == 0) return chunks;
      --a;
      if (++idx[a] < shard.shape[a]) break;
      idx[a] = 0;
    }
  }
}

}  // namespace dcp::sharding
