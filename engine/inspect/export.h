// Copyright (c) dcp authors.
//
// Export: a step's tensors, consolidated to their full global shapes, as
// one safetensors file (the format Hugging Face loads; engine/interop/
// safetensors.h), or, with max_shard_bytes, as a sharded model in Hugging
// Face's layout: "<dir>/<name>-00001-of-0000N.safetensors", ... and the index
// "<dir>/<name>.safetensors.index.json" for an output path
// "<dir>/<name>.safetensors" (a model that fits one shard is one file, as
// save_pretrained writes it). Tensors go to shards in key order; a tensor
// larger than the bound has a shard of its own.
//
// The file is written sequentially: tensor by tensor, in blocks read through
// the query layer, each at most half of ExportOptions::block_bytes (several
// small tensors to a block), so memory stays bounded whatever the tensors'
// sizes. A block is read while the block before it is written. It appears under its name only
// once complete (a temporary is renamed), and is removed on failure.
// Objects are not tensors and are not exported; the metadata is what an
// import kept (common state "safetensors_metadata"), with the step, its
// generation and the format ("pt", which transformers expects, unless the
// import kept another).
//
// Thread safety: as the StoreReader.

#ifndef DCP_ENGINE_INSPECT_EXPORT_H_
#define DCP_ENGINE_INSPECT_EXPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/inspect/reader.h"

namespace dcp::inspect {

struct ExportOptions {
  // Only tensors whose key matches (see KeyMatches).
  // Default: "" (all)
  std::string keys_glob;

  // Upper bound on the bytes read and buffered at once.
  // Default: 64 MiB
  uint64_t block_bytes = uint64_t{64} << 20;

  // Split into shards of at most this many bytes of tensor data (see above).
  // Default: 0 (one file)
  uint64_t max_shard_bytes = 0;

  // Called after each block is read and handed to the write, with (bytes
  // done, bytes to write) of tensor data.
  // Default: none
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct ExportReport {
  std::string path;                 // the file, or the index of a sharded model
  std::vector<std::string> files;   // the safetensors files written
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
