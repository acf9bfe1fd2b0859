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
// Keys must be unique within one dict. Add does not check: it returns *this
// for chaining and dcp reports errors as Status, never by throwing or
// aborting. A duplicate is reported by put/get instead, as InvalidArgument
// "duplicate state dict key '<path>'" on every rank (a rank that failed alone
// while building would leave the others waiting in put's collectives). To
// overwrite an entry use Replace; to drop one, Remove.
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
#include "dcp/status.h"
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

  // Appends an entry; returns *this for chaining. An existing entry under
  // `key` is kept and put/get will refuse the dict (see above).
  StateDict& Add(std::string key, ShardedTensor tensor);
  StateDict& Add(std::string key, ShardedObject object);
  StateDict& Add(std::string key, Value value);
  StateDict& Add(std::string key, StateDict child);
  StateDict& Add(std::string key, ShardedTensorFactory factory);
  // The child dict under `key`, appended empty if absent. References to child
  // dicts stay valid as entries are added (references to other entries do
  // not, as with std::vector).
  // If `key` holds another kind of entry, a dict is added under it as well,
  // and put and get refuse the key (added twice) on every rank.
  StateDict& Child(std::string_view key);

  // Replaces the first entry under `key`, whatever its kind, with the given
  // one, at the same position. Returns NotFound (naming the key) if there is
  // no such entry, and leaves the dict unchanged. References to the replaced
  // entry are invalidated, and so, as after Add, are references to entries
  // that are not child dicts.
  Status Replace(std::string_view key, ShardedTensor tensor);
  Status Replace(std::string_view key, ShardedObject object);
  Status Replace(std::string_view key, Value value);
  Status Replace(std::string_view key, StateDict child);
  Status Replace(std::string_view key, ShardedTensorFactory factory);
  // Removes the first entry under `key`, keeping the order of the others.
  // Returns false if there was none. References to the removed entry, and
  // to entries that are not child dicts, are invalidated.
  bool Remove(std::string_view key);

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
  template <typename T>
  StateDict& Append(std::string key, Kind kind, std::vector<T>* items, T item);
  template <typename T>
  Status ReplaceWith(std::string_view key, Kind kind, std::vector<T>* items, T item);
  // Drops entry i's payload from its kind's vector and renumbers index_.
  void ErasePayload(size_t i);

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
