// Copyright (c) dcp authors.

#include "dcp/state_dict.h"

namespace dcp {

StateDict::StateDict(const StateDict& other)
    : keys_(other.keys_),
      kinds_(other.kinds_),
      index_(other.index_),
      tensors_(other.tensors_),
      objects_(other.objects_),
      values_(other.values_),
      factories_(other.factories_) {
  dicts_.reserve(other.dicts_.size());
  for (const auto& d : other.dicts_) dicts_.push_back(std::make_unique<StateDict>(*d));
}

StateDict& StateDict::operator=(const StateDict& other) {
  if (this != &other) *this = StateDict(other);
  return *this;
}

template <typename T>
StateDict& StateDict::Append(std::string key, Kind kind, std::vector<T>* items, T item) {
  keys_.push_back(std::move(key));
  kinds_.push_back(kind);
  index_.push_back(items->size());
  items->push_back(std::move(item));
  return *this;
}

template <typename T>
Status StateDict::ReplaceWith(std::string_view key, Kind kind, std::vector<T>* items, T item) {
  const size_t i = Find(key);
  if (i == npos) return Status::NotFound("no state dict entry '" + std::string(key) + "' to replace");
  if (kinds_[i] == kind) {
    (*items)[index_[i]] = std::move(item);
    return Status::OK();
  }
  ErasePayload(i);
  kinds_[i] = kind;
  index_[i] = items->size();
  items->push_back(std::move(item));
  return Status::OK();
}

void StateDict::ErasePayload(size_t i) {
  const size_t at = index_[i];
  switch (kinds_[i]) {
    case Kind::kTensor: tensors_.erase(tensors_.begin() + at); break;
    case Kind::kObject: objects_.erase(objects_.begin() + at); break;
    case Kind::kValue: values_.erase(values_.begin() + at); break;
    case Kind::kDict: dicts_.erase(dicts_.begin() + at); break;
    case Kind::kFactory: factories_.erase(factories_.begin() + at); break;
  }
  // Entries of the same kind stored after it moved down one slot.
  for (size_t j = 0; j < keys_.size(); ++j) {
    if (kinds_[j] == kinds_[i] && index_[j] > at) --index_[j];
  }
}

StateDict& StateDict::Add(std::string key, ShardedTensor tensor) {
  return Append(std::move(key), Kind::kTensor, &tensors_, std::move(tensor));
}

StateDict& StateDict::Add(std::string key, ShardedObject object) {
  return Append(std::move(key), Kind::kObject, &objects_, std::move(object));
}

StateDict& StateDict::Add(std::string key, Value value) {
  return Append(std::move(key), Kind::kValue, &values_, std::move(value));
}

StateDict& StateDict::Add(std::string key, StateDict child) {
  return Append(std::move(key), Kind::kDict, &dicts_, std::make_unique<StateDict>(std::move(child)));
}

StateDict& StateDict::Add(std::string key, ShardedTensorFactory factory) {
  return Append(std::move(key), Kind::kFactory, &factories_, std::move(factory));
}

StateDict& StateDict::Child(std::string_view key) {
  const size_t i = Find(key);
  if (i != npos && kind(i) == Kind::kDict) return dict(i);
  // Absent, or held by another kind: a second entry under `key` then makes
  // put and get refuse the key on every rank (as a key added twice).
  Add(std::string(key), StateDict());
  return *dicts_.back();
}

Status StateDict::Replace(std::string_view key, ShardedTensor tensor) {
  return ReplaceWith(key, Kind::kTensor, &tensors_, std::move(tensor));
}

Status StateDict::Replace(std::string_view key, ShardedObject object) {
  return ReplaceWith(key, Kind::kObject, &objects_, std::move(object));
}

Status StateDict::Replace(std::string_view key, Value value) {
  return ReplaceWith(key, Kind::kValue, &values_, std::move(value));
}

Status StateDict::Replace(std::string_view key, StateDict child) {
  return ReplaceWith(key, Kind::kDict, &dicts_, std::make_unique<StateDict>(std::move(child)));
}

Status StateDict::Replace(std::string_view key, ShardedTensorFactory factory) {
  return ReplaceWith(key, Kind::kFactory, &factories_, std::move(factory));
}

bool StateDict::Remove(std::string_view key) {
  const size_t i = Find(key);
  if (i == npos) return false;
  ErasePayload(i);
  keys_.erase(keys_.begin() + i);
  kinds_.erase(kinds_.begin() + i);
  index_.erase(index_.begin() + i);
  return true;
}

size_t StateDict::Find(std::string_view key) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return i;
  }
  return npos;
}

}  // namespace dcp
