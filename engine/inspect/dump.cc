// Copyright (c) dcp authors.

#include "engine/inspect/dump.h"

#include <charconv>
#include <cstring>

#include "engine/base/buffer.h"
#include "engine/base/file.h"
#include "engine/sharding/chunking.h"

namespace dcp::inspect {
namespace {

Result<std::optional<int64_t>> ParseIndex(std::string_view s, std::string_view text) {
  if (s.empty()) return std::optional<int64_t>();
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Status::InvalidArgument("region '" + std::string(text) + "': '" + std::string(s) + "' is not an index");
  }
  return std::optional<int64_t>(v);
}

bool ConvertsToFloat32(DType dtype) {
  return dtype == DType::kBFloat16 || dtype == DType::kFloat8E4M3 || dtype == DType::kFloat8E5M2;
}

// The one object `key` names: by unique key, or by key when it has one cell.
Result<const manifest::ObjectEntry*> FindObject(const LoadedStep& step, const std::string& key) {
  std::vector<const manifest::ObjectEntry*> cells;
  for (const manifest::ObjectEntry& o : step.manifest().objects) {
    if (o.unique_key() == key) return &o;
    if (o.key == key) cells.push_back(&o);
  }
  if (cells.size() > 1) {
    std::string names;
    for (const manifest::ObjectEntry* o : cells) names += (names.empty() ? "" : ", ") + o->unique_key();
    return Status::InvalidArgument("object '" + key + "' of step " + std::to_string(step.manifest().step) + " has " +
                                   std::to_string(cells.size()) + " cells; name one: " + names);
  }
  return cells.empty() ? nullptr : cells[0];
}

}  // namespace

Result<RegionSpec> ParseRegionSpec(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c != '[' && c != ']' && c != ' ' && c != '(' && c != ')') s.push_back(c);
  }
  RegionSpec spec;
  if (s.empty()) return spec;
  size_t pos = 0;
  while (true) {
    const size_t comma = s.find(',', pos);
    const std::string_view part = std::string_view(s).substr(pos, comma == std::string::npos ? s.npos : comma - pos);
    if (part.empty()) return Status::InvalidArgument("region '" + std::string(text) + "' has an empty axis");
    RegionSpec::Axis axis;
    const size_t colon = part.find(':');
    if (colon == std::string_view::npos) {
      DCP_ASSIGN_OR_RETURN(axis.start, ParseIndex(part, text));
      axis.single = true;
    } else {
      if (part.find(':', colon + 1) != std::string_view::npos) {
        return Status::InvalidArgument("region '" + std::string(text) + "': steps (a:b:c) are not supported");
      }
      DCP_ASSIGN_OR_RETURN(axis.start, ParseIndex(part.substr(0, colon), text));
      DCP_ASSIGN_OR_RETURN(axis.stop, ParseIndex(part.substr(colon + 1), text));
    }
    spec.axes.push_back(axis);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return spec;
}

Result<Box> ResolveRegion(const RegionSpec& spec, const Shape& shape, const std::string& what) {
  if (spec.axes.size() > shape.size()) {
    return Status::InvalidArgument(what + ": region has " + std::to_string(spec.axes.size()) +
                                   " axes but the tensor has " + std::to_string(shape.size()) + " (shape " +
                                   ShapeToString(shape) + ")");
  }
  Box box{Shape(shape.size(), 0), shape};
  for (size_t d = 0; d < spec.axes.size(); ++d) {
    const RegionSpec::Axis& a = spec.axes[d];
    const int64_t n = shape[d];
    int64_t start = a.start.value_or(0);
    int64_t stop = a.single ? 0 : a.stop.value_or(n);
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (a.single) stop = start < n ? start + 1 : n + 1;  // (start + 1 may not fit)
    if (start < 0 || stop > n || start > stop || (a.single && start >= n)) {
      return Status::InvalidArgument(what + ": axis " + std::to_string(d) + " of the region is outside [0, " +
                                     std::to_string(n) + ") (shape " + ShapeToString(shape) + ")");
    }
    box.origin[d] = start;
    box.shape[d] = stop - start;
  }
  return box;
}

std::string_view NpyDescr(DType dtype) {
  switch (dtype) {
    case DType::kBool: return "|b1";
    case DType::kUInt8: return "|u1";
    case DType::kInt8: return "|i1";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kUInt16: return "<u2";
    case DType::kUInt32: return "<u4";
    case DType::kUInt64: return "<u8";
    case DType::kFloat16: return "<f2";
    case DType::kFloat32: return "<f4";
    case DType::kFloat64: return "<f8";
    case DType::kBFloat16:
    case DType::kFloat8E4M3:
    case DType::kFloat8E5M2: return "<f4";
    case DType::kComplex64: return "<c8";
    case DType::kComplex128: return "<c16";
  }
  return "|u1";
}

std::string_view NpyRawDescr(DType dtype) {
  if (IsComplex(dtype)) return NpyDescr(dtype);  // NumPy's complex types are the stored bits
  switch (DTypeSize(dtype)) {
    case 2: return "<u2";
    case 4: return "<u4";
    case 8: return "<u8";
    default: return "|u1";
  }
}

std::string NpyHeader(std::string_view descr, const Shape& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(dict.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  return out + dict;
}

Result<DumpReport> Dump(StoreReader* reader, uint64_t step, const std::string& key, const DumpOptions& options) {
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> loaded, reader->Load(step));
  if (options.raw_bits && options.npy_path.empty()) {
    return Status::InvalidArgument("dump of '" + key + "': raw_bits asks for a .npy file but npy_path is empty");
  }
  DumpReport r;
  r.step = step;
  r.key = key;
  if (loaded->FindTensor(key) == nullptr) {
    DCP_ASSIGN_OR_RETURN(const manifest::ObjectEntry* o, FindObject(*loaded, key));
    if (o == nullptr) return reader->Tensor(*loaded, key).status();  // NotFound naming key and step
    if (!options.region.empty() || !options.npy_path.empty()) {
      return Status::InvalidArgument("'" + key + "' is an object: it has no region and no .npy form");
    }
    r.is_object = true;
    r.key = o->unique_key();
    std::string bytes;
    DCP_RETURN_IF_ERROR(reader->ReadObject(*loaded, *o, &bytes));
    r.object_size = bytes.size();
    r.object_bytes = bytes.substr(0, 256);
    return r;
  }
  DCP_ASSIGN_OR_RETURN(const manifest::TensorEntry* t, reader->Tensor(*loaded, key));
  const std::string what = "tensor '" + key + "' of step " + std::to_string(step);
  DCP_ASSIGN_OR_RETURN(RegionSpec spec, ParseRegionSpec(options.region));
  DCP_ASSIGN_OR_RETURN(r.region, ResolveRegion(spec, t->global_shape, what));
  r.dtype = t->dtype;
  r.global_shape = t->global_shape;

  std::unique_ptr<base::FileWriter> npy;
  if (!options.npy_path.empty()) {
    DCP_ASSIGN_OR_RETURN(npy, base::FileWriter::Create(options.npy_path));
    r.npy_path = options.npy_path;
    r.npy_descr = std::string(options.raw_bits ? NpyRawDescr(t->dtype) : NpyDescr(t->dtype));
    r.npy_raw_bits = options.raw_bits;
    DCP_RETURN_IF_ERROR(npy->Append(NpyHeader(r.npy_descr, r.region.shape)));
  }
  const size_t elem = DTypeSize(t->dtype);
  const uint64_t total = static_cast<uint64_t>(r.region.num_elements());
  const uint64_t want_head = std::min<uint64_t>(options.count, total);
  const uint64_t want_tail = std::min<uint64_t>(options.count, total - want_head);
  base::Buffer buf;
  std::vector<float> converted;
  uint64_t seen = 0;
  for (const Box& block : sharding::ChunkBox(r.region, elem, std::max<uint64_t>(options.block_bytes, elem))) {
    const uint64_t n = static_cast<uint64_t>(block.num_elements());
    buf.Resize(n * elem);
    DCP_RETURN_IF_ERROR(reader->ReadRegion(*loaded, *t, block, buf.data()));
    r.stats.Add(t->dtype, buf.data(), n);
    if (r.head.size() < want_head * elem) {
      r.head.append(buf.data(), std::min(want_head * elem - r.head.size(), n * elem));
    }
    // The tail is the last want_tail elements not already in the head.
    const uint64_t tail_from = total - want_tail;
    if (seen + n > tail_from) {
      const uint64_t skip = tail_from > seen ? tail_from - seen : 0;
      r.tail.append(buf.data() + skip * elem, (n - skip) * elem);
    }
    seen += n;
    if (npy) {
      if (!options.raw_bits && ConvertsToFloat32(t->dtype)) {
        converted.resize(n);
        for (uint64_t i = 0; i < n; ++i)
          converted[i] = static_cast<float>(ElementToDouble(t->dtype, buf.data() + i * elem));
        DCP_RETURN_IF_ERROR(npy->Append(std::string_view(reinterpret_cast<const char*>(converted.data()), n * 4)));
      } else {
        DCP_RETURN_IF_ERROR(npy->Append(std::string_view(buf.data(), n * elem)));
      }
    }
  }
  if (npy) DCP_RETURN_IF_ERROR(npy->Commit());
  return r;
}

}  // namespace dcp::inspect
