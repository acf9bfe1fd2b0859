// Copyright (c) dcp authors.

#include "engine/store/catalog.h"

#include <cstdio>
#include <cstdlib>

#include "dcp/log.h"
#include "engine/base/fault_injection.h"
#include "engine/base/file.h"
#include "engine/codec/frame.h"
#include "engine/store/key_layout.h"

namespace dcp::storage {

namespace {

// True if steps/ holds a file named like a manifest that starts with the
// manifest frame's magic: the directory is a dcp store whatever its marker
// says.
bool HoldsManifests(const std::string& root) {
  auto names = base::ListDir(StepsDir(root));
  if (!names.ok() || !base::IsDirectory(RanksDir(root))) return false;
  for (const std::string& n : *names) {
    if (!ParseManifestFileName(n)) continue;
    auto head = base::ReadFileHead(base::JoinPath(StepsDir(root), n), 8);
    if (head.ok() && *head == "DCPMANIF") return true;
  }
  return false;
}

// The marker's verdict: OK, FailedPrecondition (not a store, or a version
// this build does not read), or a marker that is missing or damaged
// (`*damaged` set) in a directory that holds dcp manifests.
Status CheckMarker(const std::string& root, bool* damaged) {
  *damaged = false;
  if (!base::PathExists(root)) return Status::NotFound("store root '" + root + "' does not exist");
  if (!base::IsDirectory(root)) {
    return Status::FailedPrecondition("'" + root + "' is not a dcp store (not a directory)");
  }
  Status problem;
  auto marker = base::ReadFile(MarkerPath(root), 4096);
  if (!marker.ok()) {
    if (!marker.status().IsNotFound() && !marker.status().IsDataLoss()) return marker.status();
    problem = Status::FailedPrecondition("'" + root + "' is not a dcp store (no " + MarkerPath(root) + ")");
  } else if (auto version = ParseMarker(*marker); !version.ok() || *version == 0) {
    problem = Status::FailedPrecondition("'" + root + "' is not a dcp store: " +
                                         (version.ok() ? "store marker names format version 0"
                                                       : version.status().message()));
  } else if (*version != kStoreFormatVersion) {
    return Status::FailedPrecondition("store '" + root + "' has format version " + std::to_string(*version) +
                                      "; this build reads version " + std::to_string(kStoreFormatVersion));
  }
  if (problem.ok()) return Status::OK();
  // The marker is redundant with the store's contents: one lost or damaged
  // next to steps/ full of dcp manifests does not make the store unusable.
  if (!HoldsManifests(root)) return problem;
  *damaged = true;
  return Status::OK();
}

}  // namespace

Status CheckStoreRoot(const std::string& root) {
  bool damaged = false;
  return CheckMarker(root, &damaged);
}

Status CreateOrCheckStoreRoot(const std::string& root) {
  if (base::PathExists(root)) {
    if (!base::IsDirectory(root)) {
      return Status::FailedPrecondition("'" + root + "' is not a dcp store (not a directory)");
    }
    DCP_ASSIGN_OR_RETURN(auto entries, base::ListDir(root));
    if (!entries.empty()) {
      bool damaged = false;
      DCP_RETURN_IF_ERROR(CheckMarker(root, &damaged));
      if (!damaged) return Status::OK();
      Log(LogLevel::kWarning, "store '" + root + "': its marker " + MarkerPath(root) +
                                  " was missing or damaged; rewritten (steps/ holds dcp manifests)");
      return base::WriteFileAtomic(MarkerPath(root), MarkerPath(root) + ".tmp", MarkerContents());
    }
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
  const std::string path = ManifestPath(root, step);
  // The frame's header first: a file whose size disagrees with it (damaged,
  // or crafted to be large) is refused before it is read whole.
  uint64_t file_size = 0;
  auto head = base::ReadFileHead(path, codec::kFrameHeaderSize, &file_size);
  if (!head.ok() && head.status().IsNotFound()) {
    return Status::NotFound("step " + std::to_string(step) + " is not committed in store '" + root + "'");
  }
  DCP_RETURN_IF_ERROR(head.status());
  const std::string what = "manifest '" + path + "'";
  DCP_ASSIGN_OR_RETURN(const uint64_t expected, codec::FramedSize(*head, codec::kManifestFrameMagic, what));
  if (expected > kMaxManifestBytes) {
    return Status::DataLoss(what + " declares " + std::to_string(expected) + " bytes, more than the limit of " +
                            std::to_string(kMaxManifestBytes));
  }
  if (file_size != expected) {
    return Status::DataLoss(what + " is truncated or padded: its header says " + std::to_string(expected) +
                            " bytes, the file holds " + std::to_string(file_size));
  }
  // A file replaced meanwhile is caught by the frame's own checks.
  auto bytes = base::ReadFile(path, expected);
  if (!bytes.ok() && bytes.status().IsNotFound()) {
    return Status::NotFound("step " + std::to_string(step) + " is not committed in store '" + root + "'");
  }
  return bytes;
}

Status MarkStepDamaged(const std::string& root, uint64_t step, std::string_view reason) {
  if (!StepExists(root, step)) {
    return Status::NotFound("step " + std::to_string(step) + " is not committed in store '" + root + "'");
  }
  std::string text(reason.substr(0, kMaxDamageReasonBytes - 1));
  text += "\n";
  return base::WriteFileAtomic(DamagedMarkerPath(root, step), DamagedMarkerTempPath(root, step), text);
}

Status ClearStepDamaged(const std::string& root, uint64_t step) {
  const std::string path = DamagedMarkerPath(root, step);
  if (!base::PathExists(path)) return Status::OK();
  DCP_RETURN_IF_ERROR(base::RemoveFile(path));
  return base::SyncDir(StepsDir(root));
}

Result<std::optional<std::string>> StepDamage(const std::string& root, uint64_t step) {
  auto text = base::ReadFile(DamagedMarkerPath(root, step), kMaxDamageReasonBytes);
  if (!text.ok()) {
    if (text.status().IsNotFound()) return std::optional<std::string>();
    return text.status();
  }
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  return std::optional<std::string>(std::move(text).value());
}

Status CheckStepIntact(const std::string& root, uint64_t step) {
  DCP_ASSIGN_OR_RETURN(std::optional<std::string> damage, StepDamage(root, step));
  if (!damage) return Status::OK();
  std::string msg = "step " + std::to_string(step) + " of store '" + root + "' is marked damaged (" + *damage +
                    "); its intact records stay readable with dcp-inspect";
  auto steps = ListSteps(root);
  if (steps.ok()) {
    for (auto it = steps->rbegin(); it != steps->rend(); ++it) {
      auto d = StepDamage(root, *it);
      if (d.ok() && !d->has_value()) {
        msg += "; the newest intact step is " + std::to_string(*it);
        break;
      }
    }
  }
  return Status::DataLoss(msg);
}

Status PublishManifest(const std::string& root, uint64_t step, uint64_t generation, std::string_view bytes) {
  // A new manifest of the step is not what the mark was about. Cleared first:
  // a crash in between leaves the old manifest unmarked, whose lost records
  // loads still detect (never the new one wrongly refused).
  DCP_RETURN_IF_ERROR(ClearStepDamaged(root, step));
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
  DCP_RETURN_IF_ERROR(ClearStepDamaged(root, step));  // left behind by a crash: harmless, cleared on publish
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
