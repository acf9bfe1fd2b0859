// Copyright (c) dcp authors.

#include "tests/testing/layouts.h"

namespace dcp::testing {

std::vector<std::vector<ShardSpec>> RegularLayout(const Shape& global, const Shape& fragments, int ranks) {
  const size_t rank = global.size();
  std::vector<Box> shards;
  std::vector<int64_t> idx(rank, 0);
  for (;;) {
    Box b;
    for (size_t d = 0; d < rank; ++d) {
      const int64_t piece = fragments[d] > 0 && global[d] > 0 ? global[d] / fragments[d] : global[d];
      b.origin.push_back(idx[d] * piece);
      b.shape.push_back(piece);
    }
    shards.push_back(b);
    size_t d = rank;
    bool done = true;
    while (d-- > 0) {
      if (++idx[d] < std::max<int64_t>(1, global[d] > 0 ? fragments[d] : 1)) {
        done = false;
        break;
      }
      idx[d] = 0;
    }
    if (done) break;
  }
  std::vector<std::vector<ShardSpec>> out(static_cast<size_t>(ranks));
  for (size_t s = 0; s < shards.size(); ++s) out[s % static_cast<size_t>(ranks)].push_back({shards[s], {0}});
  for (int r = static_cast<int>(shards.size()); r < ranks; ++r) {
    const size_t s = static_cast<size_t>(r) % shards.size();
    out[static_cast<size_t>(r)].push_back({shards[s], {static_cast<int64_t>(r / shards.size())}});
  }
  return out;
}

Shape RandomFragments(const Shape& global, std::mt19937* rng, int max_per_axis) {
  Shape f;
  for (int64_t g : global) {
    std::vector<int64_t> divisors;
    for (int64_t k = 1; k <= std::max<int64_t>(1, std::min<int64_t>(g, max_per_axis)); ++k) {
      if (g == 0 || g % k == 0) divisors.push_back(k);
    }
    f.push_back(divisors[std::uniform_int_distribution<size_t>(0, divisors.size() - 1)(*rng)]);
  }
  return f;
}

}  // namespace dcp::testing
