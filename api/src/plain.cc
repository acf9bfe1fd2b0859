// Copyright (c) dcp authors.

#include "dcp/plain.h"

#include <algorithm>

namespace dcp {

PlainTensor::PlainTensor(std::string key, DType dtype, Shape shape)
    : key_(std::move(key)), dtype_(dtype), shape_(std::move(shape)) {
  size_bytes_ = static_cast<uint64_t>(NumElements(shape_)) * DTypeSize(dtype_);
  data_.reset(new std::byte[size_bytes_]);  // uninitialised: every byte is loaded
}

const PlainTensor* PlainState::FindTensor(std::string_view key) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), key,
                             [](const PlainTensor& t, std::string_view k) { return t.key() < k; });
  return it != tensors.end() && it->key() == key ? &*it : nullptr;
}

const ShardedObject* PlainState::FindObject(std::string_view unique_key) const {
  auto it = std::lower_bound(objects.begin(), objects.end(), unique_key,
                             [](const ShardedObject& o, std::string_view k) { return o.unique_key() < k; });
  return it != objects.end() && it->unique_key() == unique_key ? &*it : nullptr;
}

}  // namespace dcp
