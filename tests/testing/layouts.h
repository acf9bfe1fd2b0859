// Copyright (c) dcp authors.
//
// Sharding layouts for tests: which boxes of a global tensor each rank holds,
// and with which replica id.

#ifndef DCP_TESTS_TESTING_LAYOUTS_H_
#define DCP_TESTS_TESTING_LAYOUTS_H_

#include <random>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/types.h"

namespace dcp::testing {

struct ShardSpec {
  Box box;
  ReplicaId replica;
};

// A regular grid: axis d is cut into fragments[d] equal pieces (REQUIRES:
// fragments[d] divides global[d], or global[d] == 0). Shards go round-robin
// to ranks; if there are fewer shards than ranks, every extra rank holds a
// non-main replica of shard (rank % shards), so data-parallel replication is
// exercised too. Element r is rank r's shards.
std::vector<std::vector<ShardSpec>> RegularLayout(const Shape& global, const Shape& fragments, int ranks);

// Random fragments per axis (each a divisor of the extent).
Shape RandomFragments(const Shape& global, std::mt19937* rng, int max_per_axis = 4);

}  // namespace dcp::testing

#endif  // DCP_TESTS_TESTING_LAYOUTS_H_
