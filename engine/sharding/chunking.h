// Copyright (c) dcp authors.
//
// Cutting a shard into chunks: the unit of storage, one record each.
//
// A shard's box is split along its outermost axes: find the outermost axis k
// whose inner slab (the product of the extents after k, times the element
// size) fits in `max_bytes`; every axis before k is cut into single indices,
// axis k into as few runs of at most max_bytes / slab indices as possible,
// balanced so their lengths differ by at most one (longer runs first), and
// the axes after k are kept whole. Each chunk is therefore contiguous in the shard's
// row-major layout, no larger than max_bytes (and never smaller than one
// element), and the cut depends only on the shard's box, so an unchanged
// layout always yields the same chunks (incremental steps rely on it).
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_SHARDING_CHUNKING_H_
#define DCP_ENGINE_SHARDING_CHUNKING_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dcp/types.h"

namespace dcp::sharding {

// Chunks of `shard` in row-major order; none for an empty shard, one for 0-d.
// REQUIRES: max_bytes >= elem_size >= 1.
std::vector<Box> ChunkBox(const Box& shard, size_t elem_size, uint64_t max_bytes);

}  // namespace dcp::sharding

#endif  // DCP_ENGINE_SHARDING_CHUNKING_H_
