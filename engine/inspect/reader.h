// Copyright (c) dcp authors.
//
// StoreReader: one process's read-only view of a store root for inspection.
// It lists committed steps, decodes step manifests, and reads any region of
// any tensor (through the query layer's planner and assembler) or any object
// record from whichever rank store holds it. Nothing under the root is
// created or modified.
//
// Manifests are decoded leniently: the frame and the FlatBuffers structure
// must be intact (otherwise the step cannot be read at all: DataLoss), but
// the semantic invariants of manifest.h are checked per tensor and per object
// and *recorded* instead of enforced, so that `verify` can list every broken
// tensor and `show`/`layout` can still describe a step with one bad entry.
// Data reads (ReadRegion) refuse a tensor whose invariants do not hold.
//
// Thread safety: Load and the read methods may be called concurrently.

#ifndef DCP_ENGINE_INSPECT_READER_H_
#define DCP_ENGINE_INSPECT_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/options.h"
#include "dcp/status.h"
#include "engine/manifest/manifest.h"
#include "engine/query/chunk_index.h"
#include "engine/query/store_set.h"

namespace dcp::inspect {

// A decoded step manifest and what is wrong with it, if anything.
struct LoadedStep {
  std::shared_ptr<query::StepIndex> index;
  std::string path;                   // the manifest file
  Status order;                       // tensors and objects sorted and unique
  std::vector<Status> tensor_status;  // per manifest().tensors[i]: its invariants
  std::vector<Status> object_status;  // per manifest().objects[i]

  const manifest::StepManifest& manifest() const { return index->manifest(); }
  // True if every invariant holds.
  bool valid() const;
  // The first invariant problem (OK if valid()).
  Status FirstProblem() const;
  // The tensor named `key` (a linear scan if the manifest is not sorted), or
  // nullptr.
  const manifest::TensorEntry* FindTensor(std::string_view key) const;
};

// Resolves a user's step argument: a decimal step number, or "latest".
// InvalidArgument for anything else; NotFound for "latest" in an empty store.
Result<uint64_t> ResolveStep(const std::string& root, std::string_view text);

// Decodes manifest bytes leniently (see above). DataLoss naming `what` if the
// frame, version or FlatBuffers structure is broken.
Result<std::shared_ptr<const LoadedStep>> DecodeStep(std::string_view bytes, const std::string& what);

class StoreReader {
 public:
  // NotFound if `root` does not exist; FailedPrecondition if it is not a dcp
  // store (or an unsupported version).
  // Rank stores are opened with `backend`, which must outlive the reader.
  static Result<std::unique_ptr<StoreReader>> Open(const std::string& root, LoadOptions options = {},
                                                   storage::RankStoreBackend* backend = storage::DefaultBackend());

  const std::string& root() const { return root_; }
  storage::RankStoreBackend* backend() const { return backend_; }
  const LoadOptions& options() const { return options_; }

  // Committed steps, ascending.
  Result<std::vector<uint64_t>> Steps() const;

  // The step's manifest, decoded once and cached. NotFound "step N is not
  // committed"; DataLoss if it cannot be decoded.
  Result<std::shared_ptr<const LoadedStep>> Load(uint64_t step);

  // The tensor `key` of the step, ready to be read: NotFound naming the key
  // and step if absent; the tensor's invariant problem (DataLoss) if broken.
  Result<const manifest::TensorEntry*> Tensor(const LoadedStep& step, std::string_view key) const;

  // Reads `region` (global coordinates, full rank) of `tensor` into `dest`,
  // a contiguous row-major host buffer of region.shape's bytes. Chunks are
  // fetched, checked against the manifest, decoded and copied on a thread
  // pool (options().read_threads) with options().max_inflight_bytes in flight.
  // InvalidArgument if the region lies outside the tensor; DataLoss naming
  // key, offset and rank store for a missing or corrupt record.
  // REQUIRES: tensor comes from Tensor() on `step`.
  Status ReadRegion(const LoadedStep& step, const manifest::TensorEntry& tensor, const Box& region, void* dest);

  // ReadRegion of several regions (of one or more tensors) in one pass: the
  // chunks of all of them are read in the stores' physical order, small ones
  // in runs, which is what makes reading many small tensors fast.
  struct RegionRead {
    const manifest::TensorEntry* tensor = nullptr;  // from Tensor() on `step`
    Box region;
    void* dest = nullptr;  // region.shape's bytes, row-major
  };
  Status ReadRegions(const LoadedStep& step, const std::vector<RegionRead>& reads);

  // The decoded bytes of an object record.
  Status ReadObject(const LoadedStep& step, const manifest::ObjectEntry& object, std::string* out);

  query::StoreSet* stores() { return &stores_; }

 private:
  StoreReader(std::string root, LoadOptions options, storage::RankStoreBackend* backend);

  const std::string root_;
  const LoadOptions options_;
  storage::RankStoreBackend* const backend_;
  query::StoreSet stores_;
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<const LoadedStep>> steps_;  // guarded by mu_
};

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_READER_H_
