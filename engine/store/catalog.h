// Copyright (c) dcp authors.
//
// The step catalog: the files under a store root that say what the store is
// and which steps are committed (see key_layout.h for the names).
//
// A step exists for readers iff its manifest file exists under steps/. A
// manifest is published by writing a temporary file, fsyncing it, renaming it
// into place and fsyncing the directory, so it appears whole or not at all.
// LATEST names the latest (largest) committed step for tools that read
// files, written the same way after the manifest; dcp itself goes by the
// manifests, so a writer killed between the two renames misleads nobody.
//
// Thread safety: stateless functions; concurrent readers are safe, and one
// writer may publish while others read.

#ifndef DCP_ENGINE_STORE_CATALOG_H_
#define DCP_ENGINE_STORE_CATALOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"

namespace dcp::storage {

// Manifests larger than this are refused before they are read.
constexpr uint64_t kMaxManifestBytes = uint64_t{4} << 30;

// OK if `root` holds a store of a supported format. NotFound if `root` does
// not exist; FailedPrecondition if it is not a dcp store (no marker), or a
// store of an unsupported format version. A marker that is missing or
// unreadable in a directory whose steps/ holds dcp manifests is taken as
// damaged, not as "not a store": the store is accepted.
Status CheckStoreRoot(const std::string& root);

// Creates the root, its marker and its directories if `root` does not exist
// or is an empty directory; otherwise behaves as CheckStoreRoot, and rewrites
// a damaged marker (with a message on stderr).
Status CreateOrCheckStoreRoot(const std::string& root);

// Committed steps, ascending.
Result<std::vector<uint64_t>> ListSteps(const std::string& root);
bool StepExists(const std::string& root, uint64_t step);

// The manifest file's bytes. NotFound naming the step if it is not committed.
Result<std::string> ReadManifestFile(const std::string& root, uint64_t step);

// Publishes `bytes` as the manifest of `step` (replacing any previous one
// atomically, and first clearing a damaged mark it had), then points LATEST
// at it.
Status PublishManifest(const std::string& root, uint64_t step, uint64_t generation, std::string_view bytes);

// Step states. A committed step (its manifest published) is intact until a
// repair finds that it lost data; it is then marked damaged (the reason kept
// next to its manifest) and loads refuse it, while every other step stays
// loadable. A repair that finds it whole again (files restored) clears the
// mark; so do deleting the step and publishing it again.
//
// Marks `step` damaged, with `reason` (text, at most kMaxDamageReasonBytes).
constexpr size_t kMaxDamageReasonBytes = 16 << 10;
Status MarkStepDamaged(const std::string& root, uint64_t step, std::string_view reason);
// Removes the mark, if any.
Status ClearStepDamaged(const std::string& root, uint64_t step);
// The reason `step` is marked damaged, or nullopt if it is not.
Result<std::optional<std::string>> StepDamage(const std::string& root, uint64_t step);
// OK unless `step` is marked damaged: then DataLoss naming the step, the
// reason and the newest intact step, if any.
Status CheckStepIntact(const std::string& root, uint64_t step);

// Removes the manifest of `step` (unlink, then fsync of steps/); if LATEST
// named it, LATEST is pointed at the largest remaining step (or removed).
// NotFound naming the step if it is not committed.
Status DeleteManifest(const std::string& root, uint64_t step);

// Removes temporary files a killed writer may have left (steps/.tmp.*,
// .tmp.LATEST.*, DCP_STORE.tmp). Returns how many. REQUIRES: the writer lock.
Result<uint64_t> RemoveTemporaries(const std::string& root);

// The largest committed step (the latest iteration of a training run), or
// nullopt if none.
Result<std::optional<uint64_t>> LatestStep(const std::string& root);

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_CATALOG_H_
