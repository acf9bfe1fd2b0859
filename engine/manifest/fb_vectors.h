// Copyright (c) dcp authors.
//
// Reading [long] vectors of verified FlatBuffers, for the codecs of this
// module only. FlatBuffers' Verifier (2.0) checks a vector's 4-byte length
// alignment, not its 8-byte elements': a damaged or crafted buffer can place
// them off alignment, where reading through the generated accessors is
// undefined behaviour. These copy byte-wise instead (what a little-endian
// host compiles to one load either way).
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_MANIFEST_FB_VECTORS_H_
#define DCP_ENGINE_MANIFEST_FB_VECTORS_H_

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "dcp/types.h"

namespace dcp::manifest::internal {

// Elements [first, first + n) of `v`. REQUIRES: first + n <= v->size().
inline Shape Int64Range(const flatbuffers::Vector<int64_t>& v, size_t first, size_t n) {
  Shape out(n);
  const uint8_t* p = v.Data() + first * sizeof(int64_t);
  for (size_t i = 0; i < n; ++i) {
    int64_t x;
    std::memcpy(&x, p + i * sizeof(int64_t), sizeof(x));
    out[i] = flatbuffers::EndianScalar(x);
  }
  return out;
}

// The whole vector; empty if absent.
inline Shape ToShape(const flatbuffers::Vector<int64_t>* v) { return v ? Int64Range(*v, 0, v->size()) : Shape(); }

// `bytes`, or an 8-byte aligned copy of them in `*storage`: the Verifier
// checks alignment relative to the buffer's start, so the start must be
// aligned for the checks to hold in memory.
inline std::string_view Aligned(std::string_view bytes, std::string* storage) {
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 8 == 0) return bytes;
  storage->assign(bytes);
  return *storage;
}

// Whether a vector of structs of alignment `align` is aligned (the 2.0
// Verifier does not check it).
template <typename T>
bool StructsAligned(const flatbuffers::Vector<const T*>* v) {
  return v == nullptr || reinterpret_cast<uintptr_t>(v->Data()) % alignof(T) == 0;
}

}  // namespace dcp::manifest::internal

#endif  // DCP_ENGINE_MANIFEST_FB_VECTORS_H_
