// Copyright (c) dcp authors.

#include "engine/inspect/inspect.h"

#include <fmt/core.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"

namespace dcp::inspect {
namespace {

Result<manifest::StepManifest> ReadManifest(const std::string& root, uint64_t step) {
  DCP_ASSIGN_OR_RETURN(std::string bytes, storage::ReadManifestFile(root, step));
  return manifest::DecodeManifest(bytes, storage::ManifestPath(root, step));
}

std::string Ratio(uint64_t raw, uint64_t stored) {
  if (stored == 0) return "-";
  return fmt::format("{:.3f}", static_cast<double>(raw) / static_cast<double>(stored));
}

std::string TimeString(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json StepJson(const StepInfo& s) {
  return {{"step", s.step},
          {"generation", s.generation},
          {"commit_time_ns", s.commit_time_ns},
          {"world_size", s.world_size},
          {"tensors", s.num_tensors},
          {"objects", s.num_objects},
          {"chunks", s.num_chunks},
          {"raw_bytes", s.raw_bytes},
          {"stored_bytes", s.stored_bytes}};
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

Result<std::vector<StepInfo>> ListSteps(const std::string& root) {
  DCP_RETURN_IF_ERROR(storage::CheckStoreRoot(root));
  DCP_ASSIGN_OR_RETURN(auto steps, storage::ListSteps(root));
  std::vector<StepInfo> out;
  for (uint64_t s : steps) {
    DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, ReadManifest(root, s));
    out.push_back(manifest::Describe(m).info);
  }
  return out;
}

Result<StepMetadata> ShowStep(const std::string& root, uint64_t step) {
  DCP_RETURN_IF_ERROR(storage::CheckStoreRoot(root));
  DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, ReadManifest(root, step));
  return manifest::Describe(m);
}

std::string RenderStepsTable(const std::vector<StepInfo>& steps) {
  if (steps.empty()) return "no committed steps\n";
  std::string out = fmt::format("{:>10}  {:<20}  {:>5}  {:>7}  {:>7}  {:>7}  {:>11}  {:>11}  {:>6}\n", "step",
                                "committed (UTC)", "ranks", "tensors", "objects", "chunks", "raw", "stored", "ratio");
  for (const StepInfo& s : steps) {
    out += fmt::format("{:>10}  {:<20}  {:>5}  {:>7}  {:>7}  {:>7}  {:>11}  {:>11}  {:>6}\n", s.step,
                       TimeString(s.commit_time_ns), s.world_size, s.num_tensors, s.num_objects, s.num_chunks,
                       HumanBytes(s.raw_bytes), HumanBytes(s.stored_bytes), Ratio(s.raw_bytes, s.stored_bytes));
  }
  return out;
}

std::string RenderStepsJson(const std::vector<StepInfo>& steps) {
  nlohmann::json j = nlohmann::json::array();
  for (const StepInfo& s : steps) j.push_back(StepJson(s));
  return j.dump(2) + "\n";
}

std::string RenderStepTable(const StepMetadata& md) {
  const StepInfo& s = md.info;
  std::string out = fmt::format(
      "step {} (generation {:016x}), committed {} by {} ranks: {} tensors, {} objects, {} chunks, {} raw, {} stored\n\n",
      s.step, s.generation, TimeString(s.commit_time_ns), s.world_size, s.num_tensors, s.num_objects, s.num_chunks,
      HumanBytes(s.raw_bytes), HumanBytes(s.stored_bytes));
  size_t width = 3;
  for (const TensorInfo& t : md.tensors) width = std::max(width, t.key.size());
  out += fmt::format("{:<{}}  {:<11}  {:<22}  {:>6}  {:>11}  {:>11}  {:>6}\n", "key", width, "dtype", "global shape",
                     "chunks", "raw", "stored", "ratio");
  for (const TensorInfo& t : md.tensors) {
    out += fmt::format("{:<{}}  {:<11}  {:<22}  {:>6}  {:>11}  {:>11}  {:>6}\n", t.key, width, DTypeName(t.dtype),
                       ShapeToString(t.global_shape), t.num_chunks, HumanBytes(t.raw_bytes),
                       HumanBytes(t.stored_bytes), Ratio(t.raw_bytes, t.stored_bytes));
  }
  if (!md.objects.empty()) {
    out += "\nobjects:\n";
    for (const ObjectInfo& o : md.objects) out += fmt::format("  {}  ({})\n", o.unique_key, HumanBytes(o.size));
  }
  return out;
}

std::string RenderStepJson(const StepMetadata& md) {
  nlohmann::json j = StepJson(md.info);
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorInfo& t : md.tensors) {
    tensors.push_back({{"key", t.key},
                       {"dtype", std::string(DTypeName(t.dtype))},
                       {"global_shape", t.global_shape},
                       {"chunks", t.num_chunks},
                       {"raw_bytes", t.raw_bytes},
                       {"stored_bytes", t.stored_bytes}});
  }
  nlohmann::json objects = nlohmann::json::array();
  for (const ObjectInfo& o : md.objects) {
    objects.push_back({{"key", o.key},
                       {"unique_key", o.unique_key},
                       {"global_shape", o.global_shape},
                       {"global_offset", o.global_offset},
                       {"size", o.size}});
  }
  j["tensor_list"] = std::move(tensors);
  j["object_list"] = std::move(objects);
  return j.dump(2) + "\n";
}

}  // namespace dcp::inspect
