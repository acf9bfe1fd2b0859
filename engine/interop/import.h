// Copyright (c) dcp authors.
//
// Import: a safetensors model (one file, or a sharded model's index and its
// files) becomes one step of a dcp store, each tensor one whole main-replica
// shard, so that any TP/PP/DP layout can load it. A key mapping
// (key_mapping.h) renames, splits and concatenates tensors on the way in.
//
// Memory stays bounded whatever the model's size: nothing is mapped or read
// whole; the write path (engine/write/shard_writer.h) reads each chunk from
// its file, or files, with pread into a ring of chunk buffers, encodes it and
// appends it to the step's table file. One process, one rank store (rank 0);
// the step commits as any put does (temp manifest, fsync, rename, LATEST):
// a failed import leaves no step, and earlier steps are untouched.
//
// The files' `__metadata__` is kept in the step's common state under
// "safetensors_metadata" (a map of strings), which `dcp-inspect export
// --safetensors` writes back.

#ifndef DCP_ENGINE_INTEROP_IMPORT_H_
#define DCP_ENGINE_INTEROP_IMPORT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "dcp/options.h"
#include "dcp/reports.h"
#include "dcp/status.h"
#include "engine/interop/key_mapping.h"

namespace dcp::interop {

struct ImportOptions {
  // The step to write. Default: the latest committed step + 1 (0 for an
  // empty store).
  std::optional<uint64_t> step;
  // How source names become dcp keys. Default (null): names kept.
  const KeyMapping* mapping = nullptr;
  // Sources no rule matches are kept under their own names instead of
  // failing the import.
  bool keep_unmatched = false;
  // chunk_bytes, compression, encode_threads, overwrite, incremental (an
  // import of a model whose tensors did not change references the latest
  // step's records).
  SaveOptions save;
  // Create the store if `root` holds none.
  bool create_if_missing = true;
  // Chunks being read and encoded at once (write::WriteRequest::max_in_flight):
  // what bounds the import's memory, at about this many times three chunk
  // buffers. Two keep the reads, the encoding and the appends overlapping.
  int chunks_in_flight = 2;
};

struct ImportReport {
  uint64_t step = 0;
  uint64_t files = 0;
  uint64_t source_tensors = 0;
  uint64_t tensors = 0;     // in the step
  uint64_t data_bytes = 0;  // raw bytes of the step's tensors
  SaveReport save;
  double seconds = 0;
};

// `source`: a .safetensors file, or an index (a file whose name ends in
// ".json": its "weight_map" names the files, next to it). Errors name the
// file and tensor (DataLoss for a malformed file, InvalidArgument for the
// mapping, AlreadyExists for a step that exists without overwrite).
Result<ImportReport> ImportSafetensors(const std::string& root, const std::string& source,
                                       const ImportOptions& options);

}  // namespace dcp::interop

#endif  // DCP_ENGINE_INTEROP_IMPORT_H_
