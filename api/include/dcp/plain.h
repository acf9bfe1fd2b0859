// Copyright (c) dcp authors.
//
// What Store::LoadPlain returns: whole tensors of a step in buffers it owns,
// the step's objects and its common state — Megatron's load_plain_tensors,
// for conversion and debugging on one process.
//
// Ownership: a PlainTensor owns its bytes (contiguous, row-major, 16-byte
// aligned); views from view() live as long as the PlainTensor. Move-only.
// Thread safety: values.

#ifndef DCP_PLAIN_H_
#define DCP_PLAIN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/tensor_view.h"
#include "dcp/types.h"
#include "dcp/value.h"

namespace dcp {

class PlainTensor {
 public:
  // Allocates (uninitialised) room for a contiguous tensor of `shape`.
  // Throws std::bad_alloc if the memory cannot be had.
  PlainTensor(std::string key, DType dtype, Shape shape);
  PlainTensor(PlainTensor&&) noexcept = default;
  PlainTensor& operator=(PlainTensor&&) noexcept = default;
  PlainTensor(const PlainTensor&) = delete;
  PlainTensor& operator=(const PlainTensor&) = delete;

  const std::string& key() const { return key_; }
  DType dtype() const { return dtype_; }
  // The tensor's global shape (the buffer holds all of it).
  const Shape& shape() const { return shape_; }
  uint64_t size_bytes() const { return size_bytes_; }
  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  // A contiguous view of the whole buffer.
  TensorView view() { return TensorView(data_.get(), dtype_, shape_); }
  TensorView view() const { return TensorView(static_cast<const void*>(data_.get()), dtype_, shape_); }

 private:
  std::string key_;
  DType dtype_;
  Shape shape_;
  uint64_t size_bytes_ = 0;
  std::unique_ptr<std::byte[]> data_;
};

struct PlainState {
  std::vector<PlainTensor> tensors;    // sorted by key
  std::vector<ShardedObject> objects;  // each saved cell with its bytes, sorted
                                       // by unique key; replica_id empty
  // The common state saved with the step (as LoadResult::common_state).
  Value common_state;

  // Binary search; nullptr if absent.
  const PlainTensor* FindTensor(std::string_view key) const;
  const ShardedObject* FindObject(std::string_view unique_key) const;
};

}  // namespace dcp

#endif  // DCP_PLAIN_H_
