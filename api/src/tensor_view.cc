// Copyright (c) dcp authors.

#include "dcp/tensor_view.h"

#include <string>

namespace dcp {

Shape ContiguousStrides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

TensorView::TensorView(void* data, DType dtype, Shape shape, Shape strides, Device device)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)), device_(device) {
  if (strides_.empty() && !shape_.empty()) strides_ = ContiguousStrides(shape_);
}

TensorView::TensorView(const void* data, DType dtype, Shape shape, Shape strides, Device device)
    : TensorView(const_cast<void*>(data), dtype, std::move(shape), std::move(strides), device) {}

int TensorView::SharedAxis() const {
  if (num_elements() == 0) return -1;
  for (size_t i = 0; i < shape_.size() && i < strides_.size(); ++i) {
    if (shape_[i] > 1 && strides_[i] == 0) return static_cast<int>(i);
  }
  return -1;
}

bool TensorView::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;  // the stride of a size-1 axis is irrelevant
    if (shape_[i] == 0) return true;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

TensorView TensorView::Slice(const Box& box) const {
  char* p = static_cast<char*>(data_);
  const size_t elem = DTypeSize(dtype_);
  for (size_t i = 0; i < shape_.size(); ++i) {
    p += static_cast<size_t>(box.origin[i] * strides_[i]) * elem;
  }
  return TensorView(static_cast<void*>(p), dtype_, box.shape, strides_, device_);
}

Status TensorView::Validate() const {
  if (DTypeSize(dtype_) == 0) {
    return Status::InvalidArgument("view has invalid dtype " +
                                   std::to_string(static_cast<int>(dtype_)));
  }
  if (strides_.size() != shape_.size()) {
    return Status::InvalidArgument("view has " + std::to_string(strides_.size()) +
                                   " strides for " + std::to_string(shape_.size()) + " axes");
  }
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (shape_[i] < 0) {
      return Status::InvalidArgument("view has negative extent " + std::to_string(shape_[i]) +
                                     " on axis " + std::to_string(i));
    }
    if (strides_[i] < 0) {
      return Status::InvalidArgument("view has negative stride " + std::to_string(strides_[i]) +
                                     " on axis " + std::to_string(i));
    }
  }
  if (data_ == nullptr && num_elements() > 0) {
    return Status::InvalidArgument("view of shape " + ShapeToString(shape_) + " has a null data pointer");
  }
  return Status::OK();
}

}  // namespace dcp
