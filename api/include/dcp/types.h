// Copyright (c) dcp authors.
//
// Vocabulary types: element types (DType), shapes, boxes (regions of a global
// array) and devices.
//
// All extents, offsets and strides are in elements, not bytes, and are int64.
// Arrays are row-major: the last axis varies fastest.
//
// Thread safety: plain values.

#ifndef DCP_TYPES_H_
#define DCP_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dcp {

// Element types. DO NOT CHANGE THESE VALUES: they are stored in manifests.
// 1-byte fp8 formats are stored as raw bytes: dcp never converts values.
// Complex numbers are (real, imaginary) pairs of float32 / float64, as in
// PyTorch and NumPy.
enum class DType : uint8_t {
  kBool = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kInt16 = 4,
  kInt32 = 5,
  kInt64 = 6,
  kFloat16 = 7,
  kBFloat16 = 8,
  kFloat32 = 9,
  kFloat64 = 10,
  kFloat8E4M3 = 11,
  kFloat8E5M2 = 12,
  kUInt16 = 13,
  kUInt32 = 14,
  kUInt64 = 15,
  kComplex64 = 16,
  kComplex128 = 17,
};

// Every DType, in enum order (for tests and tools).
const std::vector<DType>& AllDTypes();

// Size of one element in bytes; 0 for a value outside the enum.
size_t DTypeSize(DType dtype);
// True for float16, bfloat16, float32, float64 and both fp8 formats (not for
// the complex types, as in PyTorch).
bool IsFloatingPoint(DType dtype);
// True for complex64 and complex128.
bool IsComplex(DType dtype);
// "float32", "bfloat16", "float8_e4m3", ...; "invalid" for a value outside the enum.
std::string_view DTypeName(DType dtype);
// Inverse of DTypeName; nullopt if unknown.
std::optional<DType> DTypeFromName(std::string_view name);
// True if `raw` is one of the enum's values (for decoding untrusted bytes).
bool IsValidDType(uint8_t raw);

// A shape, an offset or a stride vector: one int64 per axis.
using Shape = std::vector<int64_t>;

// Number of elements of a shape (1 for the 0-d shape {}); 0 if any extent is 0.
// REQUIRES: every extent >= 0.
int64_t NumElements(const Shape& shape);

// "(2, 3, 4)".
std::string ShapeToString(const Shape& shape);

// A box in the index space of a global array: [origin, origin + shape) per axis.
// Boxes are values; a 0-d box (both vectors empty) holds exactly one element.
struct Box {
  Shape origin;
  Shape shape;

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t num_elements() const { return NumElements(shape); }
  // "[0:4, 8:16]" (half-open ranges per axis); "[]" for 0-d.
  std::string ToString() const;

  friend bool operator==(const Box& a, const Box& b) {
    return a.origin == b.origin && a.shape == b.shape;
  }
};

// Where a tensor's bytes live. dcp reads and writes host memory directly; CUDA
// device memory goes through pinned staging (engine/cuda, when built).
enum class DeviceType : uint8_t { kHost = 0, kCuda = 1 };

struct Device {
  DeviceType type = DeviceType::kHost;
  int index = 0;  // CUDA device ordinal; 0 for host.

  static Device Host() { return {}; }
  static Device Cuda(int index) { return {DeviceType::kCuda, index}; }
  bool is_host() const { return type == DeviceType::kHost; }
  std::string ToString() const;  // "host", "cuda:1"

  friend bool operator==(const Device& a, const Device& b) {
    return a.type == b.type && a.index == b.index;
  }
};

}  // namespace dcp

#endif  // DCP_TYPES_H_
