// Copyright (c) dcp authors.
//
// Strided n-d copies between host buffers: how chunk bytes move between
// tensor views and contiguous record buffers.
//
// Axes that are contiguous in both source and destination are merged, so the
// common cases (whole rows, whole chunks) become a few large memcpys.
//
// Thread safety: pure functions; distinct destinations may be written
// concurrently.

#ifndef DCP_ENGINE_ARRAY_STRIDED_COPY_H_
#define DCP_ENGINE_ARRAY_STRIDED_COPY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dcp/tensor_view.h"
#include "dcp/types.h"

namespace dcp::array {

// One axis of a copy between two strided layouts (strides in bytes).
struct CopyDim {
  int64_t extent;
  int64_t src_stride;
  int64_t dst_stride;
};

// The axes of a copy of `shape` with size-1 axes dropped and neighbours that
// are contiguous in both layouts merged, outermost first. Empty for a single
// element. REQUIRES: no zero extent.
std::vector<CopyDim> CoalesceDims(const int64_t* src_strides, const int64_t* dst_strides, const int64_t* shape,
                                  int rank);

// Strides in bytes of a view.
std::vector<int64_t> ByteStrides(const TensorView& view);

// Copies `shape` elements of `elem_size` bytes. Strides are in bytes, one per
// axis. REQUIRES: destination elements do not overlap the source or each other.
void CopyStridedBytes(const void* src, const int64_t* src_strides, void* dst,
                      const int64_t* dst_strides, const int64_t* shape, int rank, size_t elem_size);

// Copies `src` into `dst`. REQUIRES: same dtype and shape, host memory.
void CopyView(const TensorView& src, const TensorView& dst);

// Copies the view's elements into a contiguous row-major buffer, and back.
// REQUIRES: `buffer` holds view.size_bytes() bytes.
void PackView(const TensorView& view, void* buffer);
void UnpackView(const void* buffer, const TensorView& view);

}  // namespace dcp::array

#endif  // DCP_ENGINE_ARRAY_STRIDED_COPY_H_
