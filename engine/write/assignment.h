// Copyright (c) dcp authors.
//
// Fully parallel save (SaveOptions::fully_parallel): who writes the chunks of
// replicated boxes, so that their bytes are spread over the ranks that hold a
// replica instead of all landing on the main replica's rank.
//
// Every rank computes the same assignment from the same inputs — every
// rank's held boxes, known to all after the put's exchange of declarations —
// so no further communication is needed. A box is the unit: a (tensor key,
// box) that several ranks declare, one of them as (part of) a main replica;
// for flat (distributed-optimizer) shards, each of the boxes the flat range
// is made of (sharding/pieces.h). Its chunks are the deterministic cut of the
// box (sharding::ChunkBox with the put's chunk_bytes), exactly the chunks the
// main replica would write, so records, manifests and incremental dedup (a
// chunk found by key and box in the base step) do not change; only the rank
// store that holds each record does.
//
// The greedy is the reference's distribute_shards_to_ranks, per chunk:
// boxes held by one rank count as that rank's load first; then the chunks of
// replicated boxes, in order of (number of holders, -raw bytes, key, box,
// chunk index), each go to the holder with the fewest bytes assigned so far
// (ties to the lower rank).
//
// Thread safety: Compute is pure; a WriteAssignment is immutable afterwards.

#ifndef DCP_ENGINE_WRITE_ASSIGNMENT_H_
#define DCP_ENGINE_WRITE_ASSIGNMENT_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/types.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/write/shard_writer.h"

namespace dcp::write {

// A box of a tensor that a rank holds.
struct HeldBox {
  std::string_view key;  // viewed, not owned: must outlive Compute
  Box box;               // global coordinates, prepended axes included
  uint32_t elem_size = 1;
  bool main = false;  // part of a main replica
};

// Every rank's held boxes from the put's declarations: a shard's box, or for
// a flat shard the boxes its range is made of (as sharding::PiecesOf cuts
// them). Keys view into `decls`.
std::vector<std::vector<HeldBox>> HeldBoxes(const std::vector<manifest::RankDecl>& decls);

// Boxes held alike by every rank of `ranks` (ascending, not empty).
struct HeldSet {
  const std::vector<HeldBox>* boxes;  // not owned
  std::vector<int> ranks;
};

// The held boxes of the compact exchange (manifest/exchange_codec.h): one set
// per rank (its main shards) and one per distinct set of non-main shards with
// its holders. `sets` views into `boxes`, whose keys view into `global`:
// movable (the views stay valid), not copyable.
struct HeldSets {
  HeldSets() = default;
  HeldSets(HeldSets&&) = default;
  HeldSets& operator=(HeldSets&&) = default;
  HeldSets(const HeldSets&) = delete;
  HeldSets& operator=(const HeldSets&) = delete;

  size_t world = 0;
  std::vector<std::vector<HeldBox>> boxes;
  std::vector<HeldSet> sets;
};
HeldSets HeldBoxes(const manifest::GlobalDecls& global);

class WriteAssignment {
 public:
  // `held[r]` lists rank r's boxes (main replicas and others). A (key, box)
  // that no rank holds as a main replica is not written by anyone; one that
  // only one rank holds is written whole by it. REQUIRES: chunk_bytes >= 1;
  // the main replicas passed global validation (at most one per element).
  static WriteAssignment Compute(const std::vector<std::vector<HeldBox>>& held, uint64_t chunk_bytes);

  // The same for boxes given as sets held alike by several ranks, over
  // ranks [0, world): the assignment is that of Compute with each rank's
  // list the union of its sets. Cost follows the sets' boxes and their
  // holders, not ranks x boxes.
  static WriteAssignment Compute(const std::vector<HeldSet>& held, size_t world, uint64_t chunk_bytes);
  static WriteAssignment Compute(const HeldSets& held, uint64_t chunk_bytes) {
    return Compute(held.sets, held.world, chunk_bytes);
  }

  // For a box held by several ranks, one of them as a main replica: element
  // i is the rank that writes chunk i of
  // sharding::ChunkBox(box, elem_size, max(chunk_bytes, elem_size)).
  // nullptr for any other box (its main replica writes it whole).
  const std::vector<int>* Writers(std::string_view key, const Box& box) const;

  // Raw bytes each rank writes under this assignment, unshared boxes
  // included: the per-rank byte balance of the put.
  const std::vector<uint64_t>& bytes_per_rank() const { return bytes_; }

  // Appends to request->tensors what rank `rank` writes of its shard `t`
  // (main replica or not): of each piece of `t` in a shared box, the chunks
  // assigned to `rank`, each as a piece of its own (the chunk's box and the
  // view of exactly its elements, so the writer cuts it into that one chunk);
  // any other piece whole if `t` is a main replica. `t` must outlive the
  // request. REQUIRES: `t` is one of the shards the assignment was computed
  // from, declared by `rank`.
  void AddTensor(const ShardedTensor& t, int rank, WriteRequest* request) const;

 private:
  struct BoxKey {
    std::string key;
    Box box;
    friend bool operator<(const BoxKey& a, const BoxKey& b) {
      if (a.key != b.key) return a.key < b.key;
      if (a.box.origin != b.box.origin) return a.box.origin < b.box.origin;
      return a.box.shape < b.box.shape;
    }
  };
  uint64_t chunk_bytes_ = 1;
  std::map<BoxKey, std::vector<int>> writers_;
  std::vector<uint64_t> bytes_;
};

}  // namespace dcp::write

#endif  // DCP_ENGINE_WRITE_ASSIGNMENT_H_
