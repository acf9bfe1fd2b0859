// Copyright (c) dcp authors.
//
// Dump: the values of one tensor region (or one object) of a step, read
// through the query layer in blocks of bounded size: the first and last
// elements, statistics over every element (min, max, mean, std, NaN and Inf
// counts), and optionally the region as a NumPy .npy file, streamed.
//
// .npy files (format 1.0) keep the dtype, except that bfloat16 and the fp8
// formats, which NumPy lacks, are written as float32 (exactly: every value of
// those formats is a float32 value). With DumpOptions::raw_bits the file
// instead holds the stored bits of every element unchanged, as the unsigned
// integer of the element's width ("<u2" for bfloat16 and float16, "|u1" for
// fp8), for callers that need the stored bit patterns themselves (NaN
// payloads, bit-exact comparison, ml_dtypes' .view()).
//
// Thread safety: as the StoreReader.

#ifndef DCP_ENGINE_INSPECT_DUMP_H_
#define DCP_ENGINE_INSPECT_DUMP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/inspect/elements.h"
#include "engine/inspect/reader.h"

namespace dcp::inspect {

// A region argument, numpy-like: comma-separated axes, each "start:stop"
// (either end may be omitted; negative values count from the end) or one
// index "i" (kept as an axis of extent 1). Axes not given are whole. Brackets
// and spaces are ignored, so "[0:4, 8:16]" (as boxes print) works too.
struct RegionSpec {
  struct Axis {
    std::optional<int64_t> start;
    std::optional<int64_t> stop;
    bool single = false;  // "i": start only
  };
  std::vector<Axis> axes;
};

// InvalidArgument naming the text on a syntax error.
Result<RegionSpec> ParseRegionSpec(std::string_view text);

// The box `spec` selects in a tensor of `shape`. InvalidArgument naming
// `what` if it has more axes than the tensor or lies outside it.
Result<Box> ResolveRegion(const RegionSpec& spec, const Shape& shape, const std::string& what);

// The .npy header (magic, version 1.0, length, dict, padding to 64 bytes) for
// an array of `descr` (e.g. "<f4") and `shape` in C order.
std::string NpyHeader(std::string_view descr, const Shape& shape);
// The .npy type of a dtype ("<f4"; bfloat16 and fp8 are written as "<f4").
std::string_view NpyDescr(DType dtype);
// The .npy type of a dtype's raw bits: the unsigned integer of its width
// ("|u1", "<u2", "<u4" or "<u8"); complex: NumPy's own complex type ("<c8",
// "<c16"), which is the stored bits.
std::string_view NpyRawDescr(DType dtype);

struct DumpOptions {
  // The region (RegionSpec syntax); empty means the whole tensor.
  // Default: ""
  std::string region;

  // Elements shown from the start and from the end of the region.
  // Default: 8
  size_t count = 8;

  // If set, the region is also written to this .npy file.
  // Default: ""
  std::string npy_path;

  // If set, the .npy file holds each element's stored bits as an unsigned
  // integer of the same width (NpyRawDescr) instead of its value, so nothing
  // is converted. Without npy_path, Dump returns InvalidArgument.
  // Default: false
  bool raw_bits = false;

  // Upper bound on the bytes decoded at once.
  // Default: 64 MiB
  uint64_t block_bytes = uint64_t{64} << 20;
};

struct DumpReport {
  uint64_t step = 0;
  std::string key;
  bool is_object = false;

  // Tensors.
  DType dtype = DType::kFloat32;
  Shape global_shape;
  Box region;
  std::string head;  // raw bytes of the first min(count, n) elements
  std::string tail;  // raw bytes of the last min(count, n - head) elements
  ElementStats stats;
  std::string npy_path;  // written, if asked
  std::string npy_descr;
  bool npy_raw_bits = false;  // the file holds raw bits (DumpOptions::raw_bits)

  // Objects.
  std::string object_bytes;  // the first 256 bytes
  uint64_t object_size = 0;

  size_t head_count() const { return head.size() / std::max<size_t>(DTypeSize(dtype), 1); }
  size_t tail_count() const { return tail.size() / std::max<size_t>(DTypeSize(dtype), 1); }
};

// `key` names a tensor, or an object by unique key (or by key if it has one
// cell). NotFound naming key and step if absent; InvalidArgument for a bad
// region (or a region or .npy file asked of an object, or raw_bits without a
// .npy file); DataLoss naming key,
// offset and rank store for a corrupt record; IOError for the output file.
Result<DumpReport> Dump(StoreReader* reader, uint64_t step, const std::string& key, const DumpOptions& options = {});

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_DUMP_H_
