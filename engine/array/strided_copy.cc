// Copyright (c) dcp authors.

#include "engine/array/strided_copy.h"

#include <cstring>
#include <vector>

namespace dcp::array {
namespace {

template <size_t N>
void CopyElements(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * ds, src + i * ss, N);
}

void CopyInner(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n, size_t elem) {
  if (ss == static_cast<int64_t>(elem) && ds == static_cast<int64_t>(elem)) {
    std::memcpy(dst, src, static_cast<size_t>(n) * elem);
    return;
  }
  switch (elem) {
    case 1: CopyElements<1>(src, ss, dst, ds, n); return;
    case 2: CopyElements<2>(src, ss, dst, ds, n); return;
    case 4: CopyElements<4>(src, ss, dst, ds, n); return;
    case 8: CopyElements<8>(src, ss, dst, ds, n); return;
    case 16: CopyElements<16>(src, ss, dst, ds, n); return;
    default:
      for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * ds, src + i * ss, elem);
  }
}

}  // namespace

std::vector<CopyDim> CoalesceDims(const int64_t* src_strides, const int64_t* dst_strides, const int64_t* shape,
                                  int rank) {
  std::vector<CopyDim> dims;
  dims.reserve(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    if (shape[i] == 1) continue;
    CopyDim d{shape[i], src_strides[i], dst_strides[i]};
    if (!dims.empty()) {
      CopyDim& outer = dims.back();
      if (outer.src_stride == d.src_stride * d.extent && outer.dst_stride == d.dst_stride * d.extent) {
        outer.extent *= d.extent;
        outer.src_stride = d.src_stride;
        outer.dst_stride = d.dst_stride;
        continue;
      }
    }
    dims.push_back(d);
  }
  return dims;
}

void CopyStridedBytes(const void* src, const int64_t* src_strides, void* dst,
                      const int64_t* dst_strides, const int64_t* shape, int rank, size_t elem_size) {
  for (int i = 0; i < rank; ++i) {
    if (shape[i] == 0) return;
  }
  const std::vector<CopyDim> dims = CoalesceDims(src_strides, dst_strides, shape, rank);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  if (dims.empty()) {  // a single element
    std::memcpy(d, s, elem_size);
    return;
  }
  const CopyDim& inner = dims.back();
  const size_t outer_rank = dims.size() - 1;
  std::vector<int64_t> index(outer_rank, 0);
  for (;;) {
    CopyInner(s, inner.src_stride, d, inner.dst_stride, inner.extent, elem_size);
    // Advance the outer index (odometer), moving the pointers along.
    size_t axis = outer_rank;
    for (;;) {
      if (axis == 0) return;
      --axis;
      s += dims[axis].src_stride;
      d += dims[axis].dst_stride;
      if (++index[axis] < dims[axis].extent) break;
      s -= dims[axis].src_stride * dims[axis].extent;
      d -= dims[axis].dst_stride * dims[axis].extent;
      index[axis] = 0;
    }
  }
}

std::vector<int64_t> ByteStrides(const TensorView& view) {
  const int64_t elem = static_cast<int64_t>(DTypeSize(view.dtype()));
  std::vector<int64_t> b(view.strides().size());
  for (size_t i = 0; i < b.size(); ++i) b[i] = view.strides()[i] * elem;
  return b;
}

void CopyView(const TensorView& src, const TensorView& dst) {
  const size_t elem = DTypeSize(src.dtype());
  const auto ss = ByteStrides(src);
  const auto ds = ByteStrides(dst);
  CopyStridedBytes(src.data(), ss.data(), dst.data(), ds.data(), src.shape().data(), src.rank(), elem);
}

void PackView(const TensorView& view, void* buffer) {
  CopyView(view, TensorView(buffer, view.dtype(), view.shape()));
}

void UnpackView(const void* buffer, const TensorView& view) {
  CopyView(TensorView(buffer, view.dtype(), view.shape()), view);
}

}  // namespace dcp::array
