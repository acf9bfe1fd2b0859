// Copyright (c) dcp authors.

#include "dcp/state_dict.h"

namespace dcp {

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
  dicts_.push_back(std::move(child));
  return *this;
}

StateDict& StateDict::Child(std::string_view key) {
  const size_t i = Find(key);
  if (i != npos) return dict(i);
  Add(std::string(key), StateDict());
  return dicts_.back();
}

size_t StateDict::Find(std::string_view key) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return i;
  }
  return npos;
}

}  // namespace dcp
