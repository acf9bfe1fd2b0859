// Copyright (c) dcp authors.
//
// The byte-plane ("shuffle") transform: n elements of k bytes become k planes
// of n bytes, plane j holding byte j of every element. Floating-point values
// of similar magnitude share their high (sign/exponent) bytes, so those planes
// compress while the mantissa planes stay random; chunk_codec compresses each
// plane only if it pays.
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_CODEC_BYTE_PLANE_H_
#define DCP_ENGINE_CODEC_BYTE_PLANE_H_

#include <cstddef>

namespace dcp::codec {

// dst[j * n + i] = src[i * elem_size + j]. REQUIRES: buffers do not overlap.
void SplitBytePlanes(const void* src, size_t n, size_t elem_size, void* dst);
// The inverse.
void JoinBytePlanes(const void* src, size_t n, size_t elem_size, void* dst);

}  // namespace dcp::codec

#endif  // DCP_ENGINE_CODEC_BYTE_PLANE_H_
