// Copyright (c) dcp authors.
//
// Layouts the reshard tests save and load: regular grids whose boxes are
// sliced into flattened ranges over data-parallel ranks (distributed-optimizer
// slices, unevenly: +-1 element per DP rank), and irregular 1-D splits. A
// RankShards holds one rank's shards with deterministic contents
// (tests/testing/tensor_fill.h) and checks them after a load.
//
// Used by tests/api (in-process ranks) and tests/mpi (real mpirun).

#ifndef DCP_TESTS_API_SHARD_LAYOUTS_H_
#define DCP_TESTS_API_SHARD_LAYOUTS_H_

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/state_dict.h"
#include "tests/testing/tensor_fill.h"

namespace dcp::testing {

// One shard: its box (global coordinates, prepended axes included), its flat
// range if it is a slice, and its replica id.
struct Placement {
  Box box;
  std::optional<FlatRange> range;
  ReplicaId replica;
};

// Bounds 0 = b0 <= b1 <= ... <= b_parts = n of `parts` uneven slices of n
// elements: the even split, with every inner bound moved by one element
// (alternately up and down), as a distributed optimizer's padding does.
std::vector<int64_t> UnevenBounds(int64_t n, int parts);

// The boxes of a regular grid (`fragments` per axis, each dividing the
// extent), row-major. Box i belongs to model group i % groups, groups =
// ranks / dp; rank r = group * dp + d holds, of each of its group's boxes,
// slice d of UnevenBounds(box elements, dp) — or, with dp == 0, the whole
// box, not flattened (groups = ranks). All shards are main replicas.
std::vector<Placement> GridPlacements(const Shape& global, const Shape& fragments, int dp, int rank, int ranks);

// Irregular 1-D: rank r holds one shard per entry of sizes[r] (consecutive
// along the axis, in rank order, then entry order).
std::vector<Placement> SplitPlacements(const std::vector<std::vector<int64_t>>& sizes, int rank);

// One rank's shards of several tensors, with their buffers.
class RankShards {
 public:
  // Adds a shard of tensor `key` (global shape `global`, `prepend` prepended
  // axes) at state-dict path `path`; `fill` writes its values (save),
  // otherwise the buffer holds a byte pattern a load must overwrite.
  void Add(const std::string& path, const std::string& key, DType dtype, const Shape& global, int prepend,
           const Placement& p, bool fill);
  StateDict& dict() { return dict_; }
  // Empty if every shard holds its tensor's values; otherwise the first
  // mismatch, naming the path.
  std::string Verify() const;

 private:
  struct Entry {
    std::string path, key;
    Shape global;
    Placement placement;
    HostTensor* buffer;
  };
  std::deque<HostTensor> buffers_;
  std::vector<Entry> entries_;
  StateDict dict_;
};

// The bytes of elements [range.begin, range.end) of the flattening of `box`
// of tensor `key` (the whole box without a range).
std::string ExpectedBytes(const std::string& key, DType dtype, const Shape& global, const Box& box,
                          const std::optional<FlatRange>& range);

}  // namespace dcp::testing

#endif  // DCP_TESTS_API_SHARD_LAYOUTS_H_
