// Copyright (c) dcp authors.
//
// Deterministic tensor contents for tests: element i (row-major linear index
// in the global tensor) of tensor `key` holds bytes derived from (key, i), so
// any rank can produce or check any region of any tensor without the others.
// Bit patterns are arbitrary (NaNs included for float dtypes): comparisons
// are bytewise.

#ifndef DCP_TESTS_TESTING_TENSOR_FILL_H_
#define DCP_TESTS_TESTING_TENSOR_FILL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "dcp/tensor_view.h"
#include "dcp/types.h"

namespace dcp::testing {

// Writes region `box` of global tensor `key` into `dst` (a view of box.shape;
// missing leading axes of dst are size-1 prepended axes).
void FillRegion(std::string_view key, const Shape& global_shape, const Box& box, const TensorView& dst);

// Empty if `src` holds exactly region `box` of tensor `key`; otherwise a
// description of the first mismatch.
std::string CheckRegion(std::string_view key, const Shape& global_shape, const Box& box, const TensorView& src);

// A contiguous host buffer with a view over it.
class HostTensor {
 public:
  HostTensor(DType dtype, Shape shape);
  TensorView view() { return TensorView(data_.data(), dtype_, shape_); }
  std::string& bytes() { return data_; }

 private:
  DType dtype_;
  Shape shape_;
  std::string data_;
};

}  // namespace dcp::testing

#endif  // DCP_TESTS_TESTING_TENSOR_FILL_H_
