// Copyright (c) dcp authors.

#include "engine/store/catalog.h"

#include <cstdlib>

#include "engine/base/fault_injection.h"
#include "engine/base/file.h"
#include "engine/store/key_layout.h"

namespace dcp::storage {

Status CheckStoreRoot(const std::string& root) {
  if (!base::PathExists(root)) return Status::NotFound("store root '" + root + "' does not exist");
  if (!base::IsDirectory(root)) {
    return Status::FailedPrecondition("'" + root + "' is not a dcp store (not a directory)");
  }
  auto marker = base::ReadFile(MarkerPath(root), 4096);
  if (!marker.ok()) {
    if (marker.status().IsNotFound()) {
      return Status::FailedPrecondition("'" + root + "' is not a dcp store (no " + MarkerPath(root) + ")");
    }
    return marker.status();
  }
  auto version = ParseMarker(*marker);
  if (!version.ok()) {
    return Status::FailedPrecondition("'" + root + "' is not a dcp store: " + version.status().message());
  }
  if (*version != kStoreFormatVersion) {
    return Status::FailedPrecondition("store '" + root + "' has format version " + std::to_string(*version) +
                                      "; this build reads version " + std::to_string(kStoreFormatVersion));
  }
  return Status::OK();
}

Status CreateOrCheckStoreRoot(const std::string& root) {
  if (base::PathExists(root)) {
    if (!base::IsDirectory(root)) {
      return Status::FailedPrecondition("'" + root + "' is not a dcp store (not a directory)");
    }
    DCP_ASSIGN_OR_RETURN(auto entries, base::ListDir(root));
    if (!entries.empty()) return CheckStoreRoot(root);
  }
  DCP_RETURN_IF_ERROR(base::CreateDirs(StepsDir(root)));
  DCP_RETURN_IF_ERROR(base::CreateDirs(RanksDir(root)));
  DCP_RETURN_IF_ERROR(base::SyncDir(root));
  // The marker goes last: a root without it is not (yet) a store.
  return base::WriteFileAtomic(MarkerPath(root), MarkerPath(root) + ".tmp", MarkerContents());
}

Result<std::vector<uint64_t>> ListSteps(const std::string& root) {
  DCP_ASSIGN_OR_RETURN(auto names, base::ListDir(StepsDir(root)));
  std::vector<uint64_t> steps;
  for (const std::string& n : names) {
    if (auto s = ParseManifestFileName(n)) steps.push_back(*s);
  }
  return steps;  // names are zero-padded, so sorted names are sorted steps
}

bool StepExists(const std::string& root, uint64_t step) { return base::PathExists(ManifestPath(root, step)); }

Result<std::string> ReadManifestFile(const std::string& root, uint64_t step) {
  auto bytes = base::ReadFile(ManifestPath(root, step), kMaxManifestBytes);
  if (!bytes.ok() && bytes.status().IsNotFound()) {
    return Status::NotFound("step " + std::to_string(step) + " is not committed in store '" + root + "'");
  }
  return bytes;
}

Status PublishManifest(const std::string& root, uint64_t step, uint64_t generation, std::string_view bytes) {
  DCP_RETURN_IF_ERROR(
      base::WriteFileAtomic(ManifestPath(root, step), ManifestTempPath(root, step, generation), bytes));
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("publish.after_manifest", 0));
  // The step is committed now. LATEST is a hint (see catalog.h): atomic, not
  // synced, and a failure to update it must not report the put as failed.
  auto latest = LatestStep(root);
  const uint64_t value = latest.ok() && latest->has_value() ? **latest : step;
  base::WriteFileAtomic(LatestPath(root), LatestTempPath(root, generation), std::to_string(value) + "\n",
                        /*durable=*/false)
      .IgnoreError();
  return Status::OK();
}

Status DeleteManifest(const std::string& root, uint64_t step) {
  if (!StepExists(root, step)) {
    return Status::NotFound("step " + std::to_string(step) + " is not committed in store '" + root + "'");
  }
  auto latest = base::ReadFile(LatestPath(root), 64);
  DCP_RETURN_IF_ERROR(base::RemoveFile(ManifestPath(root, step)));
  DCP_RETURN_IF_ERROR(base::SyncDir(StepsDir(root)));
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("delete.after_unlink", 0));
  if (latest.ok() && std::strtoull(latest->c_str(), nullptr, 10) == step) {
    DCP_ASSIGN_OR_RETURN(auto steps, ListSteps(root));
    if (steps.empty()) {
      DCP_RETURN_IF_ERROR(base::RemoveFile(LatestPath(root)));
      return base::SyncDir(root);
    }
    return base::WriteFileAtomic(LatestPath(root), LatestTempPath(root, step), std::to_string(steps.back()) + "\n",
                                 /*durable=*/false);
  }
  return Status::OK();
}

Result<uint64_t> RemoveTemporaries(const std::string& root) {
  uint64_t removed = 0;
  for (const std::string& dir : {StepsDir(root), root}) {
    DCP_ASSIGN_OR_RETURN(auto names, base::ListDir(dir));
    for (const std::string& n : names) {
      if (n.rfind(".tmp.", 0) == 0 || n == "DCP_STORE.tmp") {
        DCP_RETURN_IF_ERROR(base::RemoveFile(base::JoinPath(dir, n)));
        ++removed;
      }
    }
  }
  return removed;
}

Result<std::optional<uint64_t>> LatestStep(const std::string& root) {
  // The manifests decide, not the LATEST hint (which a writer killed between
  // the two renames leaves one step behind).
  DCP_ASSIGN_OR_RETURN(auto steps, ListSteps(root));
  if (steps.empty()) return std::optional<uint64_t>();
  return std::optional<uint64_t>(steps.back());
}

}  // namespace dcp::storage
