// Copyright (c) dcp authors.
//
// TensorView: a non-owning, possibly strided view of an n-d array.
//
// A view is a data pointer, a dtype, a shape, strides (in elements, one per
// axis, each >= 0) and the device the pointer belongs to. Empty strides mean
// row-major contiguous. A view does not own its memory: the caller keeps the
// memory alive (and, at load, writable) for as long as any dcp call that was
// given the view is running. Copying a view is shallow.
//
// Sources at save and destinations at load may be strided (e.g. a column
// slice of a larger matrix). Destinations must not alias themselves (no two
// indices mapping to the same element): a load refuses one with stride 0 on
// an axis of several elements (SharedAxis); other self-aliasing layouts are
// the caller's to avoid.
//
// CUDA memory is copied on dcp's own streams, which do not wait for the
// caller's: the work that writes a save's source (or still uses a load's
// destination) must be complete, e.g. its stream synchronized, before the
// call.
//
// Thread safety: a view is a value; what it points at is the caller's.

#ifndef DCP_TENSOR_VIEW_H_
#define DCP_TENSOR_VIEW_H_

#include <cstddef>
#include <cstdint>

#include "dcp/status.h"
#include "dcp/types.h"

namespace dcp {

class TensorView {
 public:
  TensorView() = default;
  // A strided view. `strides` empty means row-major contiguous.
  TensorView(void* data, DType dtype, Shape shape, Shape strides = {}, Device device = {});
  TensorView(const void* data, DType dtype, Shape shape, Shape strides = {}, Device device = {});

  void* data() const { return data_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  // Strides in elements; always one per axis (filled in for contiguous views).
  const Shape& strides() const { return strides_; }
  Device device() const { return device_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t num_elements() const { return NumElements(shape_); }
  // Bytes of the elements (num_elements * element size), not of the span.
  size_t size_bytes() const { return static_cast<size_t>(num_elements()) * DTypeSize(dtype_); }
  // True if the elements are laid out row-major without gaps.
  bool is_contiguous() const;
  // The first axis whose elements share memory (extent > 1, stride 0: a
  // broadcast or expand()ed view), or -1. Such a view can be saved, not
  // loaded into: several loaded elements would land in one.
  int SharedAxis() const;

  // The view of `box` (relative to this view's own index space).
  // REQUIRES: box lies inside shape().
  TensorView Slice(const Box& box) const;

  // OK if the view is well formed: valid dtype, extents >= 0, strides >= 0 and
  // one per axis, non-null data unless the view is empty.
  Status Validate() const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kUInt8;
  Shape shape_;
  Shape strides_;
  Device device_;
};

// Row-major strides (in elements) of a contiguous array of `shape`.
Shape ContiguousStrides(const Shape& shape);

}  // namespace dcp

#endif  // DCP_TENSOR_VIEW_H_
