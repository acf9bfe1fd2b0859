// Copyright (c) dcp authors.

#include "engine/inspect/reader.h"

#include <fmt/core.h>

#include <charconv>

#include "engine/codec/frame.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/query/assembler.h"
#include "engine/query/planner.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"

namespace dcp::inspect {
namespace {

// CheckManifestInvariants stops at the first problem of the whole manifest;
// checking a manifest that holds one entry yields that entry's problem alone.
Status CheckTensor(const manifest::TensorEntry& t) {
  manifest::StepManifest one;
  one.tensors.push_back(t);
  return manifest::CheckManifestInvariants(one);
}

Status CheckObject(const manifest::ObjectEntry& o) {
  manifest::StepManifest one;
  one.objects.push_back(o);
  return manifest::CheckManifestInvariants(one);
}

Status CheckOrder(const manifest::StepManifest& m) {
  for (size_t i = 1; i < m.tensors.size(); ++i) {
    if (!(m.tensors[i - 1].key < m.tensors[i].key)) {
      return Status::DataLoss("manifest tensors are not sorted and unique at '" + m.tensors[i].key + "'");
    }
  }
  for (size_t i = 1; i < m.objects.size(); ++i) {
    if (!(m.objects[i - 1].unique_key() < m.objects[i].unique_key())) {
      return Status::DataLoss("manifest objects are not sorted and unique at '" + m.objects[i].unique_key() + "'");
    }
  }
  return Status::OK();
}

}  // namespace

bool LoadedStep::valid() const { return FirstProblem().ok(); }

Status LoadedStep::FirstProblem() const {
  DCP_RETURN_IF_ERROR(order);
  for (const Status& s : tensor_status) DCP_RETURN_IF_ERROR(s);
  for (const Status& s : object_status) DCP_RETURN_IF_ERROR(s);
  return Status::OK();
}

const manifest::TensorEntry* LoadedStep::FindTensor(std::string_view key) const {
  if (order.ok()) return manifest().FindTensor(key);
  for (const manifest::TensorEntry& t : manifest().tensors) {
    if (t.key == key) return &t;
  }
  return nullptr;
}

Result<uint64_t> ResolveStep(const std::string& root, std::string_view text) {
  if (text == "latest") {
    DCP_RETURN_IF_ERROR(storage::CheckStoreRoot(root));
    DCP_ASSIGN_OR_RETURN(std::optional<uint64_t> latest, storage::LatestStep(root));
    if (!latest) return Status::NotFound("store '" + root + "' has no committed step");
    return *latest;
  }
  uint64_t step = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), step);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not a step number (or \"latest\")", text));
  }
  return step;
}

Result<std::shared_ptr<const LoadedStep>> DecodeStep(std::string_view bytes, const std::string& what) {
  DCP_ASSIGN_OR_RETURN(codec::Unframed u, codec::UnframeBlob(bytes, manifest::kManifestMagic, what));
  if (u.payload_version != manifest::kManifestFormatVersion) {
    return Status::DataLoss(what + " has unsupported manifest format version " + std::to_string(u.payload_version));
  }
  DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, manifest::DecodeManifestPayload(u.payload, what));
  if (m.format_version != manifest::kManifestFormatVersion) {
    return Status::DataLoss(what + " has unsupported manifest format version " + std::to_string(m.format_version));
  }
  auto step = std::make_shared<LoadedStep>();
  step->path = what;
  step->order = CheckOrder(m);
  for (const manifest::TensorEntry& t : m.tensors) step->tensor_status.push_back(CheckTensor(t));
  for (const manifest::ObjectEntry& o : m.objects) step->object_status.push_back(CheckObject(o));
  step->index = std::make_shared<query::StepIndex>(std::make_shared<const manifest::StepManifest>(std::move(m)));
  return std::shared_ptr<const LoadedStep>(std::move(step));
}

Result<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& root, LoadOptions options,
                                                       storage::RankStoreBackend* backend) {
  DCP_RETURN_IF_ERROR(storage::CheckStoreRoot(root));
  return std::unique_ptr<StoreReader>(new StoreReader(root, options, backend));
}

StoreReader::StoreReader(std::string root, LoadOptions options, storage::RankStoreBackend* backend)
    : root_(std::move(root)), options_(options), backend_(backend), stores_(root_, nullptr, backend) {}

Result<std::vector<uint64_t>> StoreReader::Steps() const { return storage::ListSteps(root_); }

Result<std::shared_ptr<const LoadedStep>> StoreReader::Load(uint64_t step) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = steps_.find(step);
    if (it != steps_.end()) return it->second;
  }
  DCP_ASSIGN_OR_RETURN(std::string bytes, storage::ReadManifestFile(root_, step));
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> loaded, DecodeStep(bytes, storage::ManifestPath(root_, step)));
  if (loaded->manifest().step != step) {
    return Status::DataLoss(loaded->path + " holds step " + std::to_string(loaded->manifest().step) + ", not step " +
                            std::to_string(step));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return steps_.emplace(step, std::move(loaded)).first->second;
}

Result<const manifest::TensorEntry*> StoreReader::Tensor(const LoadedStep& step, std::string_view key) const {
  const manifest::TensorEntry* t = step.FindTensor(key);
  const std::string step_name = "step " + std::to_string(step.manifest().step);
  if (t == nullptr) {
    std::string msg = "tensor '" + std::string(key) + "' is not in " + step_name;
    for (const manifest::ObjectEntry& o : step.manifest().objects) {
      if (o.key == key || o.unique_key() == key) {
        msg += " ('" + o.unique_key() + "' is an object)";
        break;
      }
    }
    return Status::NotFound(msg);
  }
  DCP_RETURN_IF_ERROR(step.order.Annotate(step.path));
  DCP_RETURN_IF_ERROR(step.tensor_status[static_cast<size_t>(t - step.manifest().tensors.data())].Annotate(step.path));
  return t;
}

Status StoreReader::ReadRegion(const LoadedStep& step, const manifest::TensorEntry& tensor, const Box& region,
                               void* dest) {
  return ReadRegions(step, {{&tensor, region, dest}});
}

Status StoreReader::ReadRegions(const LoadedStep& step, const std::vector<RegionRead>& reads) {
  query::ReadPlanner planner(step.index.get());
  const std::string what = "step " + std::to_string(step.manifest().step);
  for (const RegionRead& r : reads) {
    const TensorView view(r.dest, r.tensor->dtype, r.region.shape);
    DCP_RETURN_IF_ERROR(planner.Add(r.tensor->key, r.tensor->dtype, r.tensor->global_shape, r.region, view, what));
  }
  return query::ExecuteReadPlan(&stores_, step.manifest().generation, planner.Finish(), options_);
}

Status StoreReader::ReadObject(const LoadedStep& step, const manifest::ObjectEntry& object, std::string* out) {
  return query::ReadObject(&stores_, step.manifest().generation, object, out);
}

}  // namespace dcp::inspect
