// Copyright (c) dcp authors.
//
// ShardedTensorFactory: one logical local tensor saved as several stored
// pieces (Megatron-Core's ShardedTensorFactory). `build` turns the factory's
// local view into a sub-state-dict of ShardedTensors (and ShardedObjects);
// `merge` turns the loaded pieces back into the factory's view.
//
// A factory sits in a StateDict like any other entry. Put builds it and saves
// the pieces; Get builds it on the destination view, loads the pieces, then
// merges. The pieces' state-dict paths are the factory's path plus the
// piece's own path ("decoder.fc1" + "w" = "decoder.fc1.w"); their tensor keys
// are whatever the build gives them (usually the factory's key).
//
// Pieces that are views into `data` need no merge: the load writes straight
// into the destination (this is how SwiGluFactory loads without ever
// materialising a global tensor). Pieces that are not (a transposed copy, a
// change of dtype) live in buffers the build allocates from the FactoryArena
// it is given, and `merge` writes them back into `data`.
//
// Build and merge read the factory they are given (key, data, replica_id),
// not values captured when the factory was made: the optimizer helpers
// (dcp/optimizer.h) copy a model factory, swap in another key and view, and
// reuse its build and merge, as Megatron does.
//
// Ownership: a factory views the caller's memory like a ShardedTensor; the
// pieces and arena buffers of one build live as long as the Put or Get call
// that made them. Thread safety: a value type; build and merge are called on
// the thread that calls Put/Get (or PutAsync, which builds before it returns
// and does not keep the factory).

#ifndef DCP_FACTORY_H_
#define DCP_FACTORY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/status.h"
#include "dcp/tensor_view.h"
#include "dcp/types.h"

namespace dcp {

class StateDict;
struct ShardedTensorFactory;

// Why a factory is being built.
enum class FactoryPhase : uint8_t {
  kSave,  // the pieces are saved: they must hold `data`'s values
  kLoad,  // the pieces are destinations: only their geometry matters
};

// Host buffers a build allocates for pieces that cannot be views of `data`.
// Not thread-safe; owned by the Put or Get call that runs the build.
class FactoryArena {
 public:
  FactoryArena();
  ~FactoryArena();
  FactoryArena(const FactoryArena&) = delete;
  FactoryArena& operator=(const FactoryArena&) = delete;

  // A zero-filled, contiguous host tensor of `dtype` and `shape`, aligned to
  // 64 bytes, valid until the arena is destroyed. REQUIRES: a valid dtype and
  // extents >= 0.
  TensorView Allocate(DType dtype, const Shape& shape);
  // Bytes allocated so far.
  uint64_t bytes() const { return bytes_; }

 private:
  struct Block;
  std::vector<std::unique_ptr<Block>> blocks_;
  uint64_t bytes_ = 0;
};

// Fills `pieces` (empty on entry) with the factory's sub-state-dict: tensors,
// objects and nested dicts (no Values, no factories). Returns a non-OK status
// to fail the Put/Get (every rank then fails with it).
using FactoryBuildFn =
    std::function<Status(const ShardedTensorFactory& factory, FactoryPhase phase, FactoryArena* arena,
                         StateDict* pieces)>;
// Receives the pieces a load-phase build made, now filled with the loaded
// values, and writes the factory's `data` from them. Returns InvalidArgument
// (naming the key and what it got) if the pieces are not the ones it expects.
using FactoryMergeFn = std::function<Status(const ShardedTensorFactory& factory, const StateDict& loaded)>;

struct ShardedTensorFactory {
  // The logical tensor's key; build decides the pieces' keys from it.
  std::string key;
  // The local tensor: at save the source, at load the destination.
  TensorView data;
  // Passed on to the pieces by the builds in this header.
  ReplicaId replica_id;
  // REQUIRED.
  FactoryBuildFn build;
  // Empty when the pieces are views of `data` (the load fills it in place).
  FactoryMergeFn merge;
};

// Megatron's apply_swiglu_sharded_factory for a fused SwiGLU fc1 weight. The
// local tensor `data` has shape [2h/tp, ...]: this rank's rows of the `w`
// projection, then its rows of the `v` projection. It is saved as tensor
// `key` of global shape [2h, ...] (prepended axes first) with the output axis
// (axis `prepend_axis_num` of the global tensor) in 2*tp fragments: the `w`
// half at fragment tp_rank, the `v` half at fragment tp_rank + tp_size. So
// all w rows come first in the global tensor, then all v rows, whatever the
// TP size, and a checkpoint loads at any other TP size that divides h.
//
// `other_axes` lists further (axis, rank_offset, fragments) triples of the
// global tensor as in ShardedTensorFromRankOffsets, e.g. {0, layer, layers}
// for layers stacked on a prepended axis; it may not name the output axis.
// The pieces are "w" and "v", views of the two halves of `data` (no copies),
// with `replica_id`. The merge only checks that it received exactly those two
// views (the load already wrote the destination) and materialises nothing.
//
// Returns InvalidArgument naming the key if the view is malformed or 0-d,
// its output extent is odd, tp_size < 1, tp_rank is outside [0, tp_size), or
// `other_axes` would be refused by ShardedTensorFromRankOffsets or names the
// output axis.
Result<ShardedTensorFactory> SwiGluFactory(std::string key, TensorView data, int64_t tp_rank, int64_t tp_size,
                                           ReplicaId replica_id = {}, int prepend_axis_num = 0,
                                           std::vector<AxisFragmentation> other_axes = {});

}  // namespace dcp

#endif  // DCP_FACTORY_H_
