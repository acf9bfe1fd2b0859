// Copyright (c) dcp authors.

#include "engine/codec/byte_plane.h"

#include <cstdint>
#include <cstring>

namespace dcp::codec {
namespace {

// Fixed-width loops the compiler vectorises (interleaved loads/stores).
template <size_t K>
void Split(const uint8_t* __restrict src, size_t n, uint8_t* __restrict dst) {
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < K; ++j) dst[j * n + i] = src[i * K + j];
  }
}

template <size_t K>
void Join(const uint8_t* __restrict src, size_t n, uint8_t* __restrict dst) {
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < K; ++j) dst[i * K + j] = src[j * n + i];
  }
}

}  // namespace

void SplitBytePlanes(const void* src_v, size_t n, size_t elem_size, void* dst_v) {
  const auto* src = static_cast<const uint8_t*>(src_v);
  auto* dst = static_cast<uint8_t*>(dst_v);
  switch (elem_size) {
    case 1: std::memcpy(dst, src, n); return;
    case 2: Split<2>(src, n, dst); return;
    case 4: Split<4>(src, n, dst); return;
    case 8: Split<8>(src, n, dst); return;
    default:
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < elem_size; ++j) dst[j * n + i] = src[i * elem_size + j];
      }
  }
}

void JoinBytePlanes(const void* src_v, size_t n, size_t elem_size, void* dst_v) {
  const auto* src = static_cast<const uint8_t*>(src_v);
  auto* dst = static_cast<uint8_t*>(dst_v);
  switch (elem_size) {
    case 1: std::memcpy(dst, src, n); return;
    case 2: Join<2>(src, n, dst); return;
    case 4: Join<4>(src, n, dst); return;
    case 8: Join<8>(src, n, dst); return;
    default:
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < elem_size; ++j) dst[i * elem_size + j] = src[j * n + i];
      }
  }
}

}  // namespace dcp::codec
