// Copyright (c) dcp authors.

#include "engine/inspect/export.h"

#include <bit>
#include <chrono>
#include <nlohmann/json.hpp>

#include "engine/base/buffer.h"
#include "engine/base/file.h"
#include "engine/inspect/inspect.h"
#include "engine/sharding/chunking.h"

namespace dcp::inspect {

// dcp stores the host's bytes; safetensors wants little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors export assumes a little-endian host");

std::string_view SafetensorsDType(DType dtype) {
  switch (dtype) {
    case DType::kBool: return "BOOL";
    case DType::kUInt8: return "U8";
    case DType::kInt8: return "I8";
    case DType::kInt16: return "I16";
    case DType::kInt32: return "I32";
    case DType::kInt64: return "I64";
    case DType::kUInt16: return "U16";
    case DType::kUInt32: return "U32";
    case DType::kUInt64: return "U64";
    case DType::kFloat16: return "F16";
    case DType::kBFloat16: return "BF16";
    case DType::kFloat32: return "F32";
    case DType::kFloat64: return "F64";
    case DType::kFloat8E4M3: return "F8_E4M3";
    case DType::kFloat8E5M2: return "F8_E5M2";
  }
  return "";
}

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
  // Readers locate tensors by their offsets, not by the order of the header's
  // keys (which nlohmann::json sorts); data follows `tensors`.
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const manifest::TensorEntry* t : tensors) {
    if (t->key == "__metadata__") {
      return Status::InvalidArgument("step " + std::to_string(step) +
                                     " holds a tensor named '__metadata__', which safetensors reserves");
    }
    const uint64_t bytes = t->raw_bytes();
    header[t->key] = {
        {"dtype", SafetensorsDType(t->dtype)}, {"shape", t->global_shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  header["__metadata__"] = {
      {"format", "pt"}, {"dcp.step", std::to_string(step)}, {"dcp.generation", std::to_string(m.generation)}};
  std::string json;
  try {
    json = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    // safetensors names are JSON strings; dcp keys are bytes.
    return Status::InvalidArgument("step " + std::to_string(step) +
                                   " holds a tensor key that is not valid UTF-8, which safetensors cannot name (" +
                                   e.what() + "); --keys can leave it out");
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  r.header_bytes = 8 + n;

  DCP_ASSIGN_OR_RETURN(std::unique_ptr<base::FileWriter> out, base::FileWriter::Create(path));
  DCP_RETURN_IF_ERROR(out->Append(prefix));
  DCP_RETURN_IF_ERROR(out->Append(json));
  base::Buffer buf;
  const uint64_t total = offset;
  for (const manifest::TensorEntry* t : tensors) {  // the order of the offsets
    const size_t elem = DTypeSize(t->dtype);
    const Box whole{Shape(t->global_shape.size(), 0), t->global_shape};
    for (const Box& block : sharding::ChunkBox(whole, elem, std::max<uint64_t>(options.block_bytes, elem))) {
      const uint64_t bytes = static_cast<uint64_t>(block.num_elements()) * elem;
      buf.Resize(bytes);
      DCP_RETURN_IF_ERROR(reader->ReadRegion(*loaded, *t, block, buf.data()));
      DCP_RETURN_IF_ERROR(out->Append(std::string_view(buf.data(), bytes)));
      r.data_bytes += bytes;
      if (options.progress) options.progress(r.data_bytes, total);
    }
  }
  if (r.data_bytes != total) {
    return Status::Internal("export of step " + std::to_string(step) + " wrote " + std::to_string(r.data_bytes) +
                            " data bytes, expected " + std::to_string(total));
  }
  DCP_RETURN_IF_ERROR(out->Commit());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace dcp::inspect
