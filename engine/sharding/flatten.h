// Copyright (c) dcp authors.
//
// Flattening a StateDict into its leaves: sharded tensors and objects with
// their dotted paths, and the common state (the Value leaves, as a map that
// mirrors the dict's nesting). Save and load both start here.
//
// Factories (dcp/factory.h) are built here: save builds them in the save
// phase, load in the load phase, and their pieces become leaves at the
// factory's path plus the piece's path. The flat state/request owns the built
// pieces and the buffers their builds allocated (stable addresses, so leaves
// may point into them); keep it alive until the put/get is done. After a load
// has filled the leaves, ApplyFactoryMerges runs the merges.
//
// Thread safety: pure functions; the leaves point into the caller's dict or
// into the flat state/request.

#ifndef DCP_ENGINE_SHARDING_FLATTEN_H_
#define DCP_ENGINE_SHARDING_FLATTEN_H_

#include <memory>
#include <string>
#include <vector>

#include "dcp/factory.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/value.h"

namespace dcp::sharding {

template <typename T>
struct Leaf {
  std::string path;  // "model.decoder.weight"
  T* item;
};

// One factory entry of a state dict and what its build made.
struct BuiltFactory {
  std::string path;                     // the factory's own path
  const ShardedTensorFactory* factory;  // the caller's entry
  StateDict pieces;
  FactoryArena arena;
};

struct FlatState {
  std::vector<Leaf<const ShardedTensor>> tensors;
  std::vector<Leaf<const ShardedObject>> objects;
  Value common = Value::Map();
  std::vector<std::unique_ptr<BuiltFactory>> factories;
};

struct FlatRequest {
  std::vector<Leaf<ShardedTensor>> tensors;
  std::vector<Leaf<ShardedObject>> objects;
  std::vector<std::unique_ptr<BuiltFactory>> factories;  // in state-dict order
};

// InvalidArgument naming the path of a duplicate key within one dict (the
// pieces of a factory included), of a factory without a build, or of a piece
// that is a Value or a factory. A build's own error is returned with the
// factory's path prepended.
Status FlattenForSave(const StateDict& sd, FlatState* out);
Status FlattenForLoad(StateDict* sd, FlatRequest* out);

// Runs the merge of every factory of `request` (those that have one), in
// state-dict order, on its pieces; stops at the first error, which is
// returned with the factory's path prepended.
//
// A factory none of whose pieces is still a leaf of `request` (strict key
// handling dropped them as unexpected) is not merged: its view is left
// untouched, like any other unexpected entry. One that lost only some of its
// pieces cannot be merged: InvalidArgument naming the factory and the pieces
// that were not loaded.
Status ApplyFactoryMerges(const FlatRequest& request);

// Copies `sd` into `out` with every factory replaced by a dict of the pieces
// its save-phase build made (so `out` flattens to the same leaves and paths
// as `sd`, with no factory left). Buffers the builds allocated are appended
// to `arenas`; `out` views them, so they must outlive every use of `out`.
// Used where a state dict outlives the call (asynchronous puts snapshot the
// expanded dict). Errors as for FlattenForSave.
Status ExpandFactoriesForSave(const StateDict& sd, StateDict* out, std::vector<std::unique_ptr<FactoryArena>>* arenas);

}  // namespace dcp::sharding

#endif  // DCP_ENGINE_SHARDING_FLATTEN_H_
