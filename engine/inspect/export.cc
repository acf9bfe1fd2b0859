// Copyright (c) dcp authors.

#include "engine/inspect/export.h"

#include <chrono>
#include <cstdio>
#include <future>
#include <map>

#include "engine/base/buffer.h"
#include "engine/base/file.h"
#include "engine/inspect/inspect.h"
#include "engine/interop/safetensors.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/sharding/chunking.h"

namespace dcp::inspect {

Result<ExportReport> ExportSafetensors(StoreReader* reader, uint64_t step, const std::string& path,
                                       const ExportOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> loaded, reader->Load(step));
  const manifest::StepManifest& m = loaded->manifest();
  std::vector<const manifest::TensorEntry*> tensors;
  for (const manifest::TensorEntry& entry : m.tensors) {
    if (!KeyMatches(options.keys_glob, entry.key)) continue;
    DCP_ASSIGN_OR_RETURN(const manifest::TensorEntry* t, reader->Tensor(*loaded, entry.key));  // refuses broken entries
    tensors.push_back(t);
  }
  if (tensors.empty()) {
    return Status::NotFound(
        "no tensor of step " + std::to_string(step) +
        (options.keys_glob.empty() ? std::string(" (it holds none)") : " matches '" + options.keys_glob + "'"));
  }

  ExportReport r;
  r.path = path;
  r.step = step;
  r.tensors = tensors.size();
  for (const manifest::ObjectEntry& o : m.objects) {
    if (KeyMatches(options.keys_glob, o.key)) ++r.skipped_objects;
  }
  // The metadata an import kept, then the step's own.
  std::map<std::string, std::string> metadata;
  DCP_ASSIGN_OR_RETURN(Value common, manifest::DecodeCommonState(m.common_state));
  if (const Value* kept = common.Find("safetensors_metadata"); kept != nullptr && kept->kind() == Value::Kind::kMap) {
    for (size_t i = 0; i < kept->size(); ++i) {
      if (kept->at(i).kind() == Value::Kind::kString) metadata[kept->keys()[i]] = kept->at(i).as_string();
    }
  }
  metadata.emplace("format", "pt");
  metadata["dcp.step"] = std::to_string(step);
  metadata["dcp.generation"] = std::to_string(m.generation);

  // Shards: consecutive runs of tensors (key order) of at most max_shard_bytes.
  std::vector<std::vector<const manifest::TensorEntry*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const manifest::TensorEntry* t : tensors) {
    const uint64_t bytes = t->raw_bytes();
    if (options.max_shard_bytes > 0 && in_shard > 0 && in_shard + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(t);
    in_shard += bytes;
    total += bytes;
  }
  std::vector<std::string> paths;
  std::map<std::string, std::string> weight_map;
  if (shards.size() == 1) {
    paths.push_back(path);
  } else {
    const std::string suffix = ".safetensors";
    if (path.size() <= suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return Status::InvalidArgument("a sharded export needs an output path ending in '.safetensors' (got '" + path +
                                     "'): the shards and the index are named after it");
    }
    const std::string stem = path.substr(0, path.size() - suffix.size());
    char numbers[32];
    for (size_t i = 0; i < shards.size(); ++i) {
      std::snprintf(numbers, sizeof numbers, "-%05zu-of-%05zu", i + 1, shards.size());
      paths.push_back(stem + numbers + suffix);
      const std::string name = paths.back().substr(paths.back().rfind('/') + 1);
      for (const manifest::TensorEntry* t : shards[i]) weight_map[t->key] = name;
    }
    r.path = path + ".index.json";
  }

  // Two buffers of half the bound each: a block is read into one while the
  // block before it, in the other, is written (the output's buffered write is
  // a copy as long as the read's; the two overlap on two cores).
  const uint64_t half_bound = std::max<uint64_t>(options.block_bytes / 2, 1);
  base::Buffer buffers[2];
  // Every shard's header first: a tensor safetensors cannot hold (complex128)
  // is refused before any file is written.
  std::vector<std::string> headers;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::vector<interop::SafetensorsTensor> header_tensors;
    for (const manifest::TensorEntry* t : shards[i]) {
      header_tensors.push_back({t->key, t->dtype, t->global_shape, 0, t->raw_bytes()});
    }
    Result<std::string> header = interop::EncodeSafetensorsHeader(header_tensors, metadata);
    if (!header.ok()) {
      return Status::InvalidArgument("step " + std::to_string(step) + ": " + header.status().message() +
                                     "; --keys can leave such a tensor out");
    }
    headers.push_back(*std::move(header));
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    r.header_bytes += headers[i].size();
    DCP_ASSIGN_OR_RETURN(std::unique_ptr<base::FileWriter> out, base::FileWriter::Create(paths[i]));
    DCP_RETURN_IF_ERROR(out->Append(headers[i]));
    uint64_t shard_bytes = 0;
    // The write in flight, of buffers[1 - next]. Declared after `out`: on an
    // early return it is waited for (a std::async future's destructor joins)
    // before `out` goes.
    std::future<Status> writing;
    int next = 0;
    auto written = [&]() -> Status { return writing.valid() ? writing.get() : Status::OK(); };
    // Blocks of the data in file order, several small tensors' to a read (up
    // to half the bound), so that their chunks are read in runs.
    std::vector<std::pair<const manifest::TensorEntry*, Box>> pending;
    uint64_t pending_bytes = 0;
    auto flush = [&]() -> Status {
      if (pending.empty()) return Status::OK();
      base::Buffer& buf = buffers[next];
      buf.Resize(pending_bytes);
      std::vector<StoreReader::RegionRead> reads;
      uint64_t at = 0;
      for (const auto& [t, block] : pending) {
        reads.push_back({t, block, buf.data() + at});
        at += static_cast<uint64_t>(block.num_elements()) * DTypeSize(t->dtype);
      }
      DCP_RETURN_IF_ERROR(reader->ReadRegions(*loaded, reads));
      DCP_RETURN_IF_ERROR(written());
      writing = std::async(std::launch::async, [f = out.get(), data = std::string_view(buf.data(), pending_bytes)] {
        return f->Append(data);
      });
      next = 1 - next;
      r.data_bytes += pending_bytes;
      shard_bytes += pending_bytes;
      pending.clear();
      pending_bytes = 0;
      if (options.progress) options.progress(r.data_bytes, total);
      return Status::OK();
    };
    for (const manifest::TensorEntry* t : shards[i]) {  // the order of the offsets
      const size_t elem = DTypeSize(t->dtype);
      const uint64_t block_bytes = std::max<uint64_t>(half_bound, elem);
      const Box whole{Shape(t->global_shape.size(), 0), t->global_shape};
      for (const Box& block : sharding::ChunkBox(whole, elem, block_bytes)) {
        const uint64_t bytes = static_cast<uint64_t>(block.num_elements()) * elem;
        if (pending_bytes > 0 && pending_bytes + bytes > block_bytes) DCP_RETURN_IF_ERROR(flush());
        pending.emplace_back(t, block);
        pending_bytes += bytes;
      }
    }
    DCP_RETURN_IF_ERROR(flush());
    DCP_RETURN_IF_ERROR(written());
    for (const manifest::TensorEntry* t : shards[i]) shard_bytes -= t->raw_bytes();
    if (shard_bytes != 0) {
      return Status::Internal("export of step " + std::to_string(step) + " wrote the wrong number of bytes to '" +
                              paths[i] + "'");
    }
    DCP_RETURN_IF_ERROR(out->Commit());
    r.files.push_back(paths[i]);
  }
  if (shards.size() > 1) {
    // Last: a reader that finds the index finds every shard.
    DCP_ASSIGN_OR_RETURN(std::unique_ptr<base::FileWriter> index, base::FileWriter::Create(r.path));
    DCP_RETURN_IF_ERROR(index->Append(interop::EncodeSafetensorsIndex(weight_map, total)));
    DCP_RETURN_IF_ERROR(index->Commit());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace dcp::inspect
