// Copyright (c) dcp authors.
//
// The JSON renderings of render.h.

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/codec/chunk_codec.h"
#include "engine/inspect/render.h"

namespace dcp::inspect {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n"; }

json Float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

// The (real, imaginary) parts of a complex element as a JSON pair.
template <typename T>
json ComplexPair(const char* p) {
  T part[2];
  std::memcpy(part, p, sizeof(part));
  return json::array({Float(part[0]), Float(part[1])});
}

// One element as a JSON number (integers exactly), bool, string for
// non-finite floats, or [real, imaginary] for a complex number.
json Element(DType dtype, const char* p) {
  switch (dtype) {
    case DType::kComplex64: return ComplexPair<float>(p);
    case DType::kComplex128: return ComplexPair<double>(p);
    case DType::kBool: return *p != 0;
    case DType::kInt64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case DType::kUInt64: {
      uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    default:
      if (IsFloatingPoint(dtype)) return Float(ElementToDouble(dtype, p));
      return static_cast<int64_t>(ElementToDouble(dtype, p));
  }
}

json Elements(DType dtype, std::string_view bytes) {
  json out = json::array();
  const size_t size = std::max<size_t>(DTypeSize(dtype), 1);
  for (size_t i = 0; i + size <= bytes.size(); i += size) out.push_back(Element(dtype, bytes.data() + i));
  return out;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[v & 63] : '=');
  }
  return out;
}

json ValueJson(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull: return nullptr;
    case Value::Kind::kBool: return v.as_bool();
    case Value::Kind::kInt: return v.as_int();
    case Value::Kind::kFloat: return Float(v.as_float());
    case Value::Kind::kString: return v.as_string();
    case Value::Kind::kBytes: return {{"__dcp_bytes__", Base64(v.as_string())}};
    case Value::Kind::kList: {
      json out = json::array();
      for (size_t i = 0; i < v.size(); ++i) out.push_back(ValueJson(v.at(i)));
      return out;
    }
    case Value::Kind::kMap: {
      json out = json::object();
      for (size_t i = 0; i < v.size(); ++i) out[v.keys()[i]] = ValueJson(v.at(i));
      return out;
    }
    case Value::Kind::kTensor:
      return {{"__dcp_tensor__", std::string(DTypeName(v.tensor_dtype()))},
              {"shape", v.tensor_shape()},
              {"values", Elements(v.tensor_dtype(), v.as_string())}};
  }
  return nullptr;
}

json ProblemOrNull(const std::string& problem) { return problem.empty() ? json(nullptr) : json(problem); }

json StepJson(const StepSummary& s) {
  const StepInfo& i = s.info;
  return {{"step", i.step},
          {"generation", i.generation},
          {"commit_time_ns", i.commit_time_ns},
          {"committed", i.commit_time_ns ? json(TimeString(i.commit_time_ns)) : json(nullptr)},
          {"world_size", i.world_size},
          {"tensors", i.num_tensors},
          {"objects", i.num_objects},
          {"chunks", i.num_chunks},
          {"raw_bytes", i.raw_bytes},
          {"stored_bytes", i.stored_bytes},
          {"unique_bytes", i.unique_bytes},
          {"problem", ProblemOrNull(s.problem)},
          {"state", s.damage.empty() ? "committed" : "damaged"},
          {"damage", ProblemOrNull(s.damage)}};
}

json RecordJson(const manifest::RecordRef& r) {
  return {{"rank", r.store_rank},
          {"generation", r.generation},
          {"raw_bytes", r.raw_size},
          {"stored_bytes", r.stored_size},
          {"codec", codec::ChunkCodecName(r.codec)},
          {"checksum", r.checksum.ToHex()}};
}

json StatsJson(const ElementStats& s) {
  return {{"count", s.count()},    {"finite", s.finite()},    {"nan", s.nan()},
          {"inf", s.inf()},        {"zeros", s.zeros()},      {"min", Float(s.min())},
          {"max", Float(s.max())}, {"mean", Float(s.mean())}, {"std", Float(s.std())}};
}

}  // namespace

std::string RenderStepsJson(const std::vector<StepSummary>& steps) {
  json j = json::array();
  for (const StepSummary& s : steps) j.push_back(StepJson(s));
  return Dump(j);
}

std::string RenderStepJson(const StepDetail& d) {
  json j = StepJson(d.summary);
  j["keys_glob"] = d.keys_glob;
  json tensors = json::array();
  for (const TensorSummary& t : d.tensors) {
    tensors.push_back({{"key", t.info.key},
                       {"dtype", std::string(DTypeName(t.info.dtype))},
                       {"global_shape", t.info.global_shape},
                       {"chunks", t.info.num_chunks},
                       {"ranks", t.num_ranks},
                       {"raw_bytes", t.info.raw_bytes},
                       {"stored_bytes", t.info.stored_bytes},
                       {"unique_bytes", t.unique_bytes},
                       {"compression_ratio", t.info.stored_bytes ? json(static_cast<double>(t.info.raw_bytes) /
                                                                        static_cast<double>(t.info.stored_bytes))
                                                                 : json(nullptr)},
                       {"problem", ProblemOrNull(t.problem)}});
  }
  json objects = json::array();
  for (const ObjectSummary& o : d.objects) {
    objects.push_back({{"key", o.info.key},
                       {"unique_key", o.info.unique_key},
                       {"global_shape", o.info.global_shape},
                       {"global_offset", o.info.global_offset},
                       {"size", o.info.size},
                       {"stored_bytes", o.stored_bytes},
                       {"rank", o.store_rank},
                       {"problem", ProblemOrNull(o.problem)}});
  }
  json entries = json::object();
  for (const auto& [key, value] : d.common.entries) entries[key] = value;
  j["tensor_list"] = std::move(tensors);
  j["object_list"] = std::move(objects);
  j["common_state"] = {{"encoded_bytes", d.common.encoded_bytes},
                       {"entries", std::move(entries)},
                       {"problem", ProblemOrNull(d.common.problem)}};
  return Dump(j);
}

std::string RenderLayoutJson(const TensorLayout& l) {
  const manifest::TensorEntry& t = *l.tensor;
  json chunks = json::array();
  for (const manifest::ChunkEntry& c : t.chunks) {
    json record = RecordJson(c.record);
    record["offset"] = c.box.origin;
    record["shape"] = c.box.shape;
    chunks.push_back(std::move(record));
  }
  json ranks = json::array();
  for (const RankShare& r : l.ranks) {
    ranks.push_back({{"rank", r.rank},
                     {"chunks", r.chunks},
                     {"elements", r.elements},
                     {"raw_bytes", r.raw_bytes},
                     {"stored_bytes", r.stored_bytes}});
  }
  json j = {{"step", l.step},
            {"key", t.key},
            {"dtype", std::string(DTypeName(t.dtype))},
            {"global_shape", t.global_shape},
            {"coverage", {{"exact", l.coverage.ok()}, {"problem", ProblemOrNull(l.coverage.message())}}},
            {"chunks", std::move(chunks)},
            {"ranks", std::move(ranks)}};
  if (!l.map.empty()) {
    j["map"] = {{"row_cuts", l.map.row_cuts}, {"col_cuts", l.map.col_cuts}, {"cells", l.map.cells}};
  }
  return Dump(j);
}

std::string RenderVerifyJson(const VerifyReport& r) {
  json problems = json::array();
  for (const Problem& p : r.problems) {
    problems.push_back({{"kind", ProblemKindName(p.kind)},
                        {"step", p.step},
                        {"key", p.key.empty() ? json(nullptr) : json(p.key)},
                        {"offset", p.offset ? json(*p.offset) : json(nullptr)},
                        {"rank", p.rank ? json(*p.rank) : json(nullptr)},
                        {"message", p.message}});
  }
  return Dump({{"ok", r.ok()},
               {"steps", r.steps},
               {"tensors", r.tensors},
               {"chunks", r.chunks},
               {"objects", r.objects},
               {"records_read", r.records_read},
               {"stored_bytes", r.stored_bytes},
               {"raw_bytes", r.raw_bytes},
               {"seconds", r.seconds},
               {"problems", std::move(problems)}});
}

std::string RenderDiffJson(const DiffReport& d) {
  json tensors = json::array();
  for (const TensorDiff& t : d.tensors) {
    json e = {{"key", t.key},
              {"change", ChangeName(t.change)},
              {"bytes", t.bytes},
              {"changed_bytes", t.changed_bytes},
              {"changed_fraction", t.changed_fraction()},
              {"exact", t.exact},
              {"chunks_by_checksum", t.chunks_by_checksum},
              {"bytes_decoded", t.bytes_decoded}};
    if (t.change != Change::kAdded) {
      e["a"] = {{"dtype", std::string(DTypeName(t.dtype_a))}, {"global_shape", t.shape_a}};
    }
    if (t.change != Change::kRemoved) {
      e["b"] = {{"dtype", std::string(DTypeName(t.dtype_b))}, {"global_shape", t.shape_b}};
    }
    tensors.push_back(std::move(e));
  }
  json objects = json::array();
  for (const ObjectDiff& o : d.objects) {
    objects.push_back(
        {{"unique_key", o.unique_key}, {"change", ChangeName(o.change)}, {"size_a", o.size_a}, {"size_b", o.size_b}});
  }
  return Dump({{"step_a", d.step_a},
               {"step_b", d.step_b},
               {"keys_glob", d.keys_glob},
               {"bytes", d.bytes},
               {"changed_bytes", d.changed_bytes},
               {"changed_fraction", d.changed_fraction()},
               {"exact", d.exact},
               {"tensors", std::move(tensors)},
               {"objects", std::move(objects)},
               {"common_state", {{"changed", d.common_state_changed}, {"keys_changed", d.common_keys_changed}}}});
}

std::string RenderDumpJson(const DumpReport& d) {
  if (d.is_object) {
    return Dump(
        {{"step", d.step}, {"object", d.key}, {"size", d.object_size}, {"head_base64", Base64(d.object_bytes)}});
  }
  json j = {{"step", d.step},
            {"key", d.key},
            {"dtype", std::string(DTypeName(d.dtype))},
            {"global_shape", d.global_shape},
            {"region", {{"offset", d.region.origin}, {"shape", d.region.shape}}},
            {"stats", StatsJson(d.stats)},
            {"head", Elements(d.dtype, d.head)},
            {"tail", Elements(d.dtype, d.tail)}};
  if (!d.npy_path.empty()) j["npy"] = {{"path", d.npy_path}, {"descr", d.npy_descr}, {"raw_bits", d.npy_raw_bits}};
  return Dump(j);
}

std::string RenderExportJson(const ExportReport& r) {
  return Dump({{"path", r.path},
               {"files", r.files},
               {"step", r.step},
               {"tensors", r.tensors},
               {"header_bytes", r.header_bytes},
               {"data_bytes", r.data_bytes},
               {"file_bytes", r.header_bytes + r.data_bytes},
               {"skipped_objects", r.skipped_objects},
               {"seconds", r.seconds}});
}

std::string RenderCommonJson(const Value& common) { return Dump(ValueJson(common)); }

}  // namespace dcp::inspect
