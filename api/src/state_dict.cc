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

StateDict& StateDict::Add(std::string key, ShardedTensor tensor) {
  keys_.push_back(std::move(key));
  kinds_.push_back(Kind::kTensor);
  index_.push_back(tensors_.size());
  tensors_.push_back(std::move(tensor));
  return *this;
}

StateDict& StateDict::Add(std::string key, ShardedObject object) {
  keys_.push_back(std::move(key));
  kinds_.push_back(Kind::kObject);
  index_.push_back(objects_.size());
  objects_.push_back(std::move(object));
  return *this;
}

StateDict& StateDict::Add(std::string key, Value value) {
  keys_.push_back(std::move(key));
  kinds_.push_back(Kind::kValue);
  index_.push_back(values_.size());
  values_.push_back(std::move(value));
  return *this;
}

StateDict& StateDict::Add(std::string key, StateDict child) {
  keys_.push_back(std::move(key));
  kinds_.push_back(Kind::kDict);
  index_.push_back(dicts_.size());
  dicts_.push_back(std::make_unique<StateDict>(std::move(child)));
  return *this;
}

StateDict& StateDict::Add(std::string key, ShardedTensorFactory factory) {
  keys_.push_back(std::move(key));
  kinds_.push_back(Kind::kFactory);
  index_.push_back(factories_.size());
  factories_.push_back(std::move(factory));
  return *this;
}

StateDict& StateDict::Child(std::string_view key) {
  const size_t i = Find(key);
  if (i != npos) return dict(i);
  Add(std::string(key), StateDict());
  return *dicts_.back();
}

size_t StateDict::Find(std::string_view key) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return i;
  }
  return npos;
}

}  // namespace dcp
