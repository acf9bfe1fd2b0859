// Copyright (c) dcp authors.
//
// Flattening a StateDict into its leaves: sharded tensors and objects with
// their dotted paths, and the common state (the Value leaves, as a map that
// mirrors the dict's nesting). Save and load both start here.
//
// Thread safety: pure functions; the leaves point into the caller's dict.

#ifndef DCP_ENGINE_SHARDING_FLATTEN_H_
#define DCP_ENGINE_SHARDING_FLATTEN_H_

#include <string>
#include <vector>

#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/value.h"

namespace dcp::sharding {

template <typename T>
struct Leaf {
  std::string path;  // "model.decoder.weight"
  T* item;
};

struct FlatState {
  std::vector<Leaf<const ShardedTensor>> tensors;
  std::vector<Leaf<const ShardedObject>> objects;
  Value common = Value::Map();
};

struct FlatRequest {
  std::vector<Leaf<ShardedTensor>> tensors;
  std::vector<Leaf<ShardedObject>> objects;
};

// InvalidArgument naming the path of a duplicate key within one dict.
Status FlattenForSave(const StateDict& sd, FlatState* out);
Status FlattenForLoad(StateDict* sd, FlatRequest* out);

}  // namespace dcp::sharding

#endif  // DCP_ENGINE_SHARDING_FLATTEN_H_
