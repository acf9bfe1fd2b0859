// Copyright (c) dcp authors.

#include "dcp/types.h"

#include <string>

namespace dcp {
namespace {

struct DTypeTraits {
  DType dtype;
  size_t size;
  bool floating;
  std::string_view name;
};

constexpr DTypeTraits kTraits[] = {
    {DType::kBool, 1, false, "bool"},
    {DType::kUInt8, 1, false, "uint8"},
    {DType::kInt8, 1, false, "int8"},
    {DType::kInt16, 2, false, "int16"},
    {DType::kInt32, 4, false, "int32"},
    {DType::kInt64, 8, false, "int64"},
    {DType::kFloat16, 2, true, "float16"},
    {DType::kBFloat16, 2, true, "bfloat16"},
    {DType::kFloat32, 4, true, "float32"},
    {DType::kFloat64, 8, true, "float64"},
    {DType::kFloat8E4M3, 1, true, "float8_e4m3"},
    {DType::kFloat8E5M2, 1, true, "float8_e5m2"},
    {DType::kUInt16, 2, false, "uint16"},
    {DType::kUInt32, 4, false, "uint32"},
    {DType::kUInt64, 8, false, "uint64"},
    {DType::kComplex64, 8, false, "complex64"},
    {DType::kComplex128, 16, false, "complex128"},
};

const DTypeTraits* Find(DType dtype) {
  for (const auto& t : kTraits) {
    if (t.dtype == dtype) return &t;
  }
  return nullptr;
}

}  // namespace

const std::vector<DType>& AllDTypes() {
  static const std::vector<DType> all = [] {
    std::vector<DType> v;
    for (const auto& t : kTraits) v.push_back(t.dtype);
    return v;
  }();
  return all;
}

size_t DTypeSize(DType dtype) {
  const DTypeTraits* t = Find(dtype);
  return t ? t->size : 0;
}

bool IsFloatingPoint(DType dtype) {
  const DTypeTraits* t = Find(dtype);
  return t && t->floating;
}

bool IsComplex(DType dtype) { return dtype == DType::kComplex64 || dtype == DType::kComplex128; }

std::string_view DTypeName(DType dtype) {
  const DTypeTraits* t = Find(dtype);
  return t ? t->name : "invalid";
}

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& t : kTraits) {
    if (t.name == name) return t.dtype;
  }
  return std::nullopt;
}

bool IsValidDType(uint8_t raw) { return Find(static_cast<DType>(raw)) != nullptr; }

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  s += ")";
  return s;
}

std::string Box::ToString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    const int64_t o = i < origin.size() ? origin[i] : 0;
    int64_t end = 0;
    // Boxes read from damaged or hostile bytes are printed too (in the error
    // that refuses them): their ends may not fit.
    if (__builtin_add_overflow(o, shape[i], &end)) {
      s += std::to_string(o) + ":" + std::to_string(o) + "+" + std::to_string(shape[i]);
    } else {
      s += std::to_string(o) + ":" + std::to_string(end);
    }
  }
  s += "]";
  return s;
}

std::string Device::ToString() const {
  if (type == DeviceType::kHost) return "host";
  return "cuda:" + std::to_string(index);
}

}  // namespace dcp
