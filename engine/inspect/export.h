// Copyright (c) dcp authors.
//
// Export: a step's tensors, consolidated to their full global shapes, as one
// safetensors file (the format Hugging Face loads).
//
// safetensors layout: 8 bytes little-endian N, then N bytes of JSON header
// {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//  ..., "__metadata__": {string: string}}, padded with spaces to a multiple
// of 8, then the tensors' raw little-endian row-major bytes, back to back
// in header order, offsets relative to the first byte after the header.
//
// The file is written sequentially: tensor by tensor, each in blocks of at
// most ExportOptions::block_bytes read through the query layer, so memory
// stays bounded whatever the tensors' sizes. It appears under its name only
// once complete (a temporary is renamed), and is removed on failure.
// Objects are not tensors and are not exported; the metadata names the
// step, its generation and the format ("pt", which transformers expects).
//
// Thread safety: as the StoreReader.

#ifndef DCP_ENGINE_INSPECT_EXPORT_H_
#define DCP_ENGINE_INSPECT_EXPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/inspect/reader.h"

namespace dcp::inspect {

// "F32", "BF16", "F8_E4M3", ...
std::string_view SafetensorsDType(DType dtype);

struct ExportOptions {
  // Only tensors whose key matches (see KeyMatches).
  // Default: "" (all)
  std::string keys_glob;

  // Upper bound on the bytes read and buffered at once.
  // Default: 64 MiB
  uint64_t block_bytes = uint64_t{64} << 20;

  // Called after each block with (bytes written, bytes to write) of tensor
  // data.
  // Default: none
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct ExportReport {
  std::string path;
  uint64_t step = 0;
  uint64_t tensors = 0;
  uint64_t header_bytes = 0;  // including the 8-byte length
  uint64_t data_bytes = 0;
  uint64_t skipped_objects = 0;
  double seconds = 0;
};

// NotFound for an unknown step, or when no tensor matches the filter;
// DataLoss (naming key, offset, rank store) for a corrupt record; IOError
// naming the path for the output.
Result<ExportReport> ExportSafetensors(StoreReader* reader, uint64_t step, const std::string& path,
                                       const ExportOptions& options = {});

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_EXPORT_H_
