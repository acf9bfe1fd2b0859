// Copyright (c) dcp authors.
//
// StateDict: a nested, string-keyed, insertion-ordered tree whose leaves are
// ShardedTensors, ShardedObjects, ShardedTensorFactories and common-state
// Values.
//
// At save, every rank passes its state dict: tensors and objects are its
// shards; Value leaves form the common state (rank 0's copy is stored, as in
// Megatron). At load, every rank passes a request of the same shape: tensor
// leaves name destination views (filled in place), object leaves receive their
// bytes, and Value leaves are ignored (the saved common state is returned
// instead). Factory leaves (dcp/factory.h) stand for the pieces their build
// makes, at the factory's path plus the piece's path, at save and at load
// (where their merge runs after the pieces are loaded). Paths
// ("model.decoder.weight") are the dotted chain of keys; they name entries in
// error messages and key-handling reports.
//
// Keys must be unique within one dict; put/get report a duplicate by path.
// Ownership: a StateDict owns its entries (the tensor data it views is the
// caller's). Thread safety: a value type.

#ifndef DCP_STATE_DICT_H_
#define DCP_STATE_DICT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/factory.h"
#include "dcp/sharded.h"
#include "dcp/value.h"

namespace dcp {

class StateDict {
 public:
  enum class Kind : uint8_t { kTensor, kObject, kValue, kDict, kFactory };
  static constexpr size_t npos = static_cast<size_t>(-1);

  StateDict() = default;
  StateDict(const StateDict& other);
  StateDict& operator=(const StateDict& other);
  StateDict(StateDict&&) noexcept = default;
  StateDict& operator=(StateDict&&) noexcept = default;

  // Appends an entry; returns *this for chaining.
  StateDict& Add(std::string key, ShardedTensor tensor);
  StateDict& Add(std::string key, ShardedObject object);
  StateDict& Add(std::string key, Value value);
  StateDict& Add(std::string key, StateDict child);
  StateDict& Add(std::string key, ShardedTensorFactory factory);
  // The child dict under `key`, appended empty if absent. References to child
  // dicts stay valid as entries are added (references to other entries do
  // not, as with std::vector).
  // REQUIRES: an existing entry under `key` is a dict.
  StateDict& Child(std::string_view key);

  size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  const std::string& key(size_t i) const { return keys_[i]; }
  Kind kind(size_t i) const { return kinds_[i]; }
  // Index of the first entry under `key`, or npos.
  size_t Find(std::string_view key) const;

  // Entry accessors. REQUIRES: i < size() and kind(i) matches.
  ShardedTensor& tensor(size_t i) { return tensors_[index_[i]]; }
  const ShardedTensor& tensor(size_t i) const { return tensors_[index_[i]]; }
  ShardedObject& object(size_t i) { return objects_[index_[i]]; }
  const ShardedObject& object(size_t i) const { return objects_[index_[i]]; }
  Value& value(size_t i) { return values_[index_[i]]; }
  const Value& value(size_t i) const { return values_[index_[i]]; }
  StateDict& dict(size_t i) { return *dicts_[index_[i]]; }
  const StateDict& dict(size_t i) const { return *dicts_[index_[i]]; }
  ShardedTensorFactory& factory(size_t i) { return factories_[index_[i]]; }
  const ShardedTensorFactory& factory(size_t i) const { return factories_[index_[i]]; }

 private:
  std::vector<std::string> keys_;
  std::vector<Kind> kinds_;
  std::vector<size_t> index_;  // position in the vector of kinds_[i]'s kind
  std::vector<ShardedTensor> tensors_;
  std::vector<ShardedObject> objects_;
  std::vector<Value> values_;
  std::vector<std::unique_ptr<StateDict>> dicts_;  // stable addresses
  std::vector<ShardedTensorFactory> factories_;
};

}  // namespace dcp

#endif  // DCP_STATE_DICT_H_
