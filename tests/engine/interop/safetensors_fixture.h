// Copyright (c) dcp authors.
//
// Writing safetensors files for the interop tests, byte by byte: the header
// JSON is given as text (so malformed ones can be written too), or made from
// tensors whose bytes are a function of their name.

#ifndef DCP_TESTS_ENGINE_INTEROP_SAFETENSORS_FIXTURE_H_
#define DCP_TESTS_ENGINE_INTEROP_SAFETENSORS_FIXTURE_H_

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "dcp/types.h"
#include "engine/interop/safetensors.h"

namespace dcp::interop {

// Writes: the 8-byte length of `json`, `json`, `data`.
inline void WriteRaw(const std::string& path, const std::string& json, const std::string& data,
                     uint64_t declared = UINT64_MAX) {
  const uint64_t n = declared != UINT64_MAX ? declared : json.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  std::ofstream(path, std::ios::binary) << out << json << data;
}

// Distinct bytes of tensor `name`: byte i is a hash of (name, i); a bool
// tensor's bytes are 0 or 1.
inline std::string TensorBytes(const std::string& name, DType dtype, const Shape& shape) {
  const uint64_t n = static_cast<uint64_t>(NumElements(shape)) * DTypeSize(dtype);
  std::string out(n, '\0');
  uint64_t h = 1469598103934665603ull;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t x = (h + i * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
    out[i] = static_cast<char>(dtype == DType::kBool ? (x >> 40) & 1 : (x >> 40) & 0xff);
  }
  return out;
}

struct TestTensor {
  std::string name;
  DType dtype;
  Shape shape;
};

// A valid file of `tensors` (bytes from TensorBytes) and `metadata`.
inline void WriteSafetensors(const std::string& path, const std::vector<TestTensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::vector<SafetensorsTensor> header;
  std::string data;
  for (const TestTensor& t : tensors) {
    const std::string bytes = TensorBytes(t.name, t.dtype, t.shape);
    header.push_back({t.name, t.dtype, t.shape, 0, bytes.size()});
    data += bytes;
  }
  std::ofstream(path, std::ios::binary) << EncodeSafetensorsHeader(header, metadata).value() << data;
}

}  // namespace dcp::interop

#endif  // DCP_TESTS_ENGINE_INTEROP_SAFETENSORS_FIXTURE_H_
