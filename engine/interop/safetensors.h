// Copyright (c) dcp authors.
//
// safetensors, Hugging Face's tensor file format, read and written.
//
// Layout: 8 bytes little-endian N, then N bytes of a JSON object (padded
// with spaces), then the data: each tensor's raw little-endian row-major
// bytes. The header maps each name to {"dtype": "F32", "shape": [..],
// "data_offsets": [begin, end]}, offsets relative to the first byte after
// the header; "__metadata__" maps strings to strings. A sharded model is
// several such files and an index, "<name>.safetensors.index.json":
// {"metadata": {"total_size": ...}, "weight_map": {tensor name: file name}}.
//
// Headers are untrusted input (a file someone downloaded): the header length
// is bounded before anything is allocated; each tensor's dtype must be one
// dcp knows, its shape non-negative without overflow, its byte count equal
// to shape x dtype size; the offsets must tile the data exactly (in order,
// no overlap, no hole: what the safetensors library itself requires) and
// end where the file ends. Every refusal is DataLoss naming the file and,
// where there is one, the tensor.

#ifndef DCP_ENGINE_INTEROP_SAFETENSORS_H_
#define DCP_ENGINE_INTEROP_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/base/file.h"

namespace dcp::interop {

// The safetensors library's own bound on the header (100 MB).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Bound on an index file (*.safetensors.index.json).
constexpr uint64_t kMaxSafetensorsIndexBytes = 64 << 20;

// "F32", "BF16", "F8_E4M3", ...; and back (nullopt for a name dcp lacks).
std::string_view SafetensorsDType(DType dtype);
std::optional<DType> DTypeFromSafetensors(std::string_view name);

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
  uint64_t offset = 0;  // of its first byte: in the file when read, in the data when written
  uint64_t bytes = 0;
};

struct SafetensorsFile {
  std::string path;
  uint64_t data_start = 0;                  // 8 + N
  std::vector<SafetensorsTensor> tensors;   // in the order of their data
  std::map<std::string, std::string> metadata;
};

// Reads and checks the header of the file at `path` (see above), or of a
// file already open (an import reads its data through the same handle).
Result<SafetensorsFile> ReadSafetensorsHeader(const std::string& path);
Result<SafetensorsFile> ReadSafetensorsHeader(const base::RandomAccessFile& file);

// The checks of ReadSafetensorsHeader on a header's JSON, for a file whose
// data part is `data_bytes` long; offsets in the result are relative to the
// data. Pure (the fuzz target).
Result<SafetensorsFile> ParseSafetensorsHeader(std::string_view json, uint64_t data_bytes, const std::string& path);

// The 8-byte length and the JSON header (padded to a multiple of 8) of a file
// holding `tensors` back to back in their order (their offsets are ignored
// and recomputed). InvalidArgument for a name safetensors cannot hold
// ("__metadata__", not UTF-8) or a dtype it lacks.
Result<std::string> EncodeSafetensorsHeader(const std::vector<SafetensorsTensor>& tensors,
                                            const std::map<std::string, std::string>& metadata);

struct SafetensorsIndex {
  std::string path;
  std::map<std::string, std::string> weight_map;  // tensor name -> file name (next to the index)
  std::vector<std::string> files;                  // the distinct file names, sorted
  std::map<std::string, std::string> metadata;     // string values of "metadata" (total_size as text)
};

// Reads an index file; DataLoss naming it if it is not one (a file name that
// is not a plain name in the same directory is refused: "../x" could point
// anywhere).
Result<SafetensorsIndex> ReadSafetensorsIndex(const std::string& path);
Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json, const std::string& path);

// The index file's JSON for `weight_map` and `total_size` bytes of tensor data.
std::string EncodeSafetensorsIndex(const std::map<std::string, std::string>& weight_map, uint64_t total_size);

}  // namespace dcp::interop

#endif  // DCP_ENGINE_INTEROP_SAFETENSORS_H_
