// Copyright (c) dcp authors.

#include "engine/interop/safetensors.h"

#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>

#include "engine/base/file.h"

namespace dcp::interop {
namespace {

// dcp stores the host's bytes; safetensors is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

using Json = nlohmann::json;

constexpr struct {
  DType dtype;
  const char* name;
} kDTypes[] = {
    {DType::kBool, "BOOL"},      {DType::kUInt8, "U8"},     {DType::kInt8, "I8"},
    {DType::kInt16, "I16"},      {DType::kInt32, "I32"},    {DType::kInt64, "I64"},
    {DType::kUInt16, "U16"},     {DType::kUInt32, "U32"},   {DType::kUInt64, "U64"},
    {DType::kFloat16, "F16"},    {DType::kBFloat16, "BF16"}, {DType::kFloat32, "F32"},
    {DType::kFloat64, "F64"},    {DType::kFloat8E4M3, "F8_E4M3"}, {DType::kFloat8E5M2, "F8_E5M2"},
    {DType::kComplex64, "C64"},  // safetensors has no complex128
};

Status Bad(const std::string& path, const std::string& what) {
  return Status::DataLoss("safetensors file '" + path + "': " + what);
}

std::string Quoted(const std::string& name) {
  // Names come from the file: keep messages printable and short.
  std::string out = "'";
  for (char c : name.substr(0, 200)) out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  if (name.size() > 200) out += "...";
  return out + "'";
}

}  // namespace

std::string_view SafetensorsDType(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "";
}

std::optional<DType> DTypeFromSafetensors(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  return std::nullopt;
}

Result<SafetensorsFile> ParseSafetensorsHeader(std::string_view text, uint64_t data_bytes, const std::string& path) {
  Json header;
  try {
    header = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return Bad(path, std::string("the header is not JSON (") + e.what() + ")");
  }
  if (!header.is_object()) return Bad(path, "the header is not a JSON object");
  SafetensorsFile f;
  f.path = path;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return Bad(path, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return Bad(path, "__metadata__ entry " + Quoted(m.key()) + " is not a string");
        f.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = "tensor " + Quoted(name);
    if (!v.is_object()) return Bad(path, what + " is not described by an object");
    auto dtype_it = v.find("dtype");
    auto shape_it = v.find("shape");
    auto offsets_it = v.find("data_offsets");
    if (dtype_it == v.end() || shape_it == v.end() || offsets_it == v.end()) {
      return Bad(path, what + " lacks dtype, shape or data_offsets");
    }
    SafetensorsTensor t;
    t.name = name;
    if (!dtype_it->is_string()) return Bad(path, what + ": dtype is not a string");
    const auto dtype = DTypeFromSafetensors(dtype_it->get<std::string>());
    if (!dtype) return Bad(path, what + ": dtype " + Quoted(dtype_it->get<std::string>()) + " is not one dcp knows");
    t.dtype = *dtype;
    if (!shape_it->is_array()) return Bad(path, what + ": shape is not an array");
    uint64_t elements = 1;
    for (const Json& d : *shape_it) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return Bad(path, what + ": shape " + shape_it->dump() + " is not made of non-negative integers");
      }
      const uint64_t n = d.get<uint64_t>();
      if (__builtin_mul_overflow(elements, n, &elements) || elements > static_cast<uint64_t>(INT64_MAX)) {
        return Bad(path, what + ": shape " + shape_it->dump() + " has too many elements");
      }
      t.shape.push_back(static_cast<int64_t>(n));
    }
    if (t.shape.size() > 64) return Bad(path, what + " has more than 64 axes");
    if (!offsets_it->is_array() || offsets_it->size() != 2 || !(*offsets_it)[0].is_number_unsigned() ||
        !(*offsets_it)[1].is_number_unsigned()) {
      return Bad(path, what + ": data_offsets is not a pair of non-negative integers");
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>(), end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_bytes) {
      return Bad(path, what + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                           "] lie outside the " + std::to_string(data_bytes) + " data bytes after the header");
    }
    uint64_t expected = 0;
    if (__builtin_mul_overflow(elements, DTypeSize(t.dtype), &expected) || expected != end - begin) {
      return Bad(path, what + ": " + std::to_string(end - begin) + " bytes do not hold shape " + shape_it->dump() +
                           " of " + dtype_it->get<std::string>());
    }
    t.offset = begin;
    t.bytes = end - begin;
    f.tensors.push_back(std::move(t));
  }
  std::sort(f.tensors.begin(), f.tensors.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.bytes < b.bytes;
  });
  uint64_t at = 0;
  for (const SafetensorsTensor& t : f.tensors) {
    if (t.offset < at) return Bad(path, "tensor " + Quoted(t.name) + " overlaps the tensor before it");
    if (t.offset > at) {
      return Bad(path, "bytes [" + std::to_string(at) + ", " + std::to_string(t.offset) +
                           ") before tensor " + Quoted(t.name) + " belong to no tensor");
    }
    at = t.offset + t.bytes;
  }
  if (at != data_bytes) {
    return Bad(path, "the tensors end at data byte " + std::to_string(at) + " but the file holds " +
                         std::to_string(data_bytes));
  }
  return f;
}

Result<SafetensorsFile> ReadSafetensorsHeader(const base::RandomAccessFile& file) {
  const std::string& path = file.path();
  const uint64_t file_size = file.size();
  if (file_size < 8) return Bad(path, "it is " + std::to_string(file_size) + " bytes, shorter than the 8-byte length");
  unsigned char head[8];
  DCP_RETURN_IF_ERROR(file.Read(0, 8, head));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | head[i];
  if (n > kMaxSafetensorsHeaderBytes) {
    return Bad(path, "the header declares " + std::to_string(n) + " bytes, more than the limit of " +
                         std::to_string(kMaxSafetensorsHeaderBytes));
  }
  if (n > file_size - 8) {
    return Bad(path, "the header declares " + std::to_string(n) + " bytes but only " + std::to_string(file_size - 8) +
                         " follow the length");
  }
  std::string json(n, '\0');
  DCP_RETURN_IF_ERROR(file.Read(8, n, json.data()));
  DCP_ASSIGN_OR_RETURN(SafetensorsFile f, ParseSafetensorsHeader(json, file_size - 8 - n, path));
  f.data_start = 8 + n;
  for (SafetensorsTensor& t : f.tensors) t.offset += f.data_start;
  return f;
}

Result<SafetensorsFile> ReadSafetensorsHeader(const std::string& path) {
  DCP_ASSIGN_OR_RETURN(auto file, base::RandomAccessFile::Open(path));
  return ReadSafetensorsHeader(*file);
}

Result<std::string> EncodeSafetensorsHeader(const std::vector<SafetensorsTensor>& tensors,
                                            const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  uint64_t offset = 0;
  for (const SafetensorsTensor& t : tensors) {
    if (t.name == "__metadata__") {
      return Status::InvalidArgument("a tensor named '__metadata__' cannot be written: safetensors reserves the name");
    }
    const std::string_view dtype = SafetensorsDType(t.dtype);
    if (dtype.empty()) {
      return Status::InvalidArgument("tensor '" + t.name + "' has dtype " + std::string(DTypeName(t.dtype)) +
                                     ", which safetensors lacks");
    }
    header[t.name] = {{"dtype", dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string json;
  try {
    json = header.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string("a tensor name or metadata string is not valid UTF-8, which "
                                               "safetensors cannot hold (") + e.what() + ")");
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view text, const std::string& path) {
  auto bad = [&](const std::string& what) {
    return Status::DataLoss("safetensors index '" + path + "': " + what);
  };
  Json index;
  try {
    index = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return bad(std::string("not JSON (") + e.what() + ")");
  }
  if (!index.is_object()) return bad("not a JSON object");
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) return bad("it has no \"weight_map\" object");
  SafetensorsIndex out;
  out.path = path;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) return bad("the file of tensor " + Quoted(it.key()) + " is not a string");
    const std::string file = it.value().get<std::string>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos) {
      return bad("tensor " + Quoted(it.key()) + " names file " + Quoted(file) +
                 ", not a file name next to the index");
    }
    out.weight_map[it.key()] = file;
  }
  if (out.weight_map.empty()) return bad("its weight_map is empty");
  for (const auto& [name, file] : out.weight_map) out.files.push_back(file);
  std::sort(out.files.begin(), out.files.end());
  out.files.erase(std::unique(out.files.begin(), out.files.end()), out.files.end());
  if (auto meta = index.find("metadata"); meta != index.end() && meta->is_object()) {
    for (auto it = meta->begin(); it != meta->end(); ++it) {
      out.metadata[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    }
  }
  return out;
}

Result<SafetensorsIndex> ReadSafetensorsIndex(const std::string& path) {
  DCP_ASSIGN_OR_RETURN(std::string text, base::ReadFile(path, kMaxSafetensorsIndexBytes));
  return ParseSafetensorsIndex(text, path);
}

std::string EncodeSafetensorsIndex(const std::map<std::string, std::string>& weight_map, uint64_t total_size) {
  Json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  return index.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace dcp::interop
