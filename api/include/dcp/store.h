// Copyright (c) dcp authors.
//
// Store: an embedded, versioned store of distributed checkpoints.
//
// A store is a directory (on a filesystem every rank can see) that holds many
// steps. Each writing rank keeps its chunk records in its own RocksDB instance
// under the root; each committed step is described by one FlatBuffers manifest
// that is published atomically. A step saved by one parallel layout loads into
// any other: every rank asks for its local slices and gets exactly those bytes.
//
//   auto comm = dcp::NewMpiWorldCommunicator();
//   auto store = dcp::Store::Open("/ckpt/run1", comm->get());
//   DCP_RETURN_IF_ERROR((*store)->Put(step, state));
//   ...
//   auto loaded = (*store)->Get(step, &request);
//
// One writer per store: a Store opened for writing holds the store's writer
// lock (on rank 0) until it is destroyed; a second writer (another job)
// gets FailedPrecondition. Readers (read_only) never take it and may read
// while a writer writes.
//
// Collective calls (Open with a communicator, Put, Get) must be called by every
// rank of the communicator, in the same order, and return the same status on
// every rank: a rank that fails makes all fail, and none hangs. A failed Put
// commits nothing; earlier steps stay loadable.
//
// A rank that cannot make its part of a collective call (its own input failed
// before it: a binding's conversion, the caller's check) still calls it, with
// that failure as `local` and an empty state: the call then fails on every
// rank with that status (the lowest failing rank's, naming it) and changes
// nothing. Put, PutAsync and PutPart take it, and fail in their own first
// agreement. Get takes it too and fails in its last one, after rank 0's
// verdict on the step (a step that is not committed or is damaged is what
// every rank reports first); the rank that failed reads nothing meanwhile,
// the others read their requests (and a read-once load stops at once).
//
// Ranks in different calls at once (Put on one, Get or PutAsync or
// CollectGarbage or PutPart on another) all fail with the same InvalidArgument
// naming both calls, instead of going on into different collectives: every
// collective call's first round is an agreement that names its call (Get's
// comes before rank 0's broadcast of the manifest, AgreedLatestStep's carries
// rank 0's answer). Steps, LatestStep, Metadata, Read and LoadPlain are not
// collective.
//
// Ownership: the communicator passed to Open is not owned and must outlive the
// Store. Thread safety: a Store is used by one thread at a time (per rank);
// PutAsync's background work is the store's own. Destroying a Store waits for
// an async put in flight.

#ifndef DCP_STORE_H_
#define DCP_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/metadata.h"
#include "dcp/options.h"
#include "dcp/plain.h"
#include "dcp/reports.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/tensor_view.h"
#include "dcp/types.h"
#include "dcp/value.h"

namespace dcp {

class Store {
 public:
  // Collective over `comm` (every rank calls it). Opens the store at `root`,
  // creating it if allowed, and opens this rank's record store for writing
  // (unless options.read_only). `comm` == nullptr means a single process.
  //
  // Returns FailedPrecondition if `root` exists but is not a dcp store (or is
  // a store of an unsupported format version), NotFound if it does not exist
  // and create_if_missing is false, IOError if a directory or rank store
  // cannot be created or opened (the message names the path and rank).
  static Result<std::unique_ptr<Store>> Open(const std::string& root, Communicator* comm,
                                             const StoreOptions& options = {});

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Collective. Saves `state` as `step`. Every rank passes its own shards;
  // together the main replicas must cover every tensor exactly once. Returns
  // OK on every rank once the step's manifest is published (after every rank's
  // records are durable). The state's bytes must not change until Put returns
  // (another thread writing them makes records whose checksums do not match:
  // they fail every load as data loss); PutAsync snapshots them instead.
  //
  // Errors (identical on every rank; nothing is committed):
  //   InvalidArgument: a view that disagrees with its declaration, offsets or
  //     shapes outside the global shape, a key with different dtype or global
  //     shape on different ranks, overlapping main replicas, holes in
  //     coverage, duplicate keys or paths, bad keys.
  //   AlreadyExists: `step` is committed and options.overwrite is false.
  //   FailedPrecondition: the store was opened read-only.
  //   IOError: a record store or the manifest could not be written.
  Status Put(uint64_t step, const StateDict& state, const SaveOptions& options = {},
             SaveReport* report = nullptr, const Status& local = Status::OK());

  // Streaming writes: one step from several parts (e.g. the model, then the
  // optimizer), each written as it arrives, so memory is bounded by the chunk
  // pipeline rather than by the state. Collective, each of them.
  //
  // BeginStep opens the step (AlreadyExists unless options.overwrite;
  // FailedPrecondition if a session or async put is open). PutPart validates
  // and writes one part: its tensor keys and object cells must be new to the
  // step (a key's shards all arrive in one part); its common-state values
  // join the step's (a later part's value wins). A part refused by
  // validation leaves the session usable; a part whose write failed ends it
  // (AbortStep). CommitStep publishes the step, as Put does; AbortStep ends
  // the session and publishes nothing. Put is BeginStep + PutPart +
  // CommitStep. `local`, here and in RemoveTensors, DeleteStep and
  // ApplyRetention, is as Put's: the caller's verdict on this rank's own
  // arguments (a binding that could not convert them passes its error and
  // placeholders); any rank's failure fails every rank, and none waits.
  Status BeginStep(uint64_t step, const SaveOptions& options = {}, const Status& local = Status::OK());
  Status PutPart(const StateDict& part, SaveReport* report = nullptr, const Status& local = Status::OK());
  Status CommitStep();
  Status AbortStep();

  // Collective. Starts saving `state` as `step` in the background and returns
  // as soon as this rank's snapshot is taken: its main-replica shards (host
  // or CUDA device memory) and objects are copied into the store's staging
  // memory, so the caller may change or free its tensors once PutAsync
  // returns. Encoding, writing and the commit run on a background thread over
  // a duplicate of the store's communicator, so they never interleave with
  // the caller's own collectives; with MPI this needs MPI_THREAD_MULTIPLE
  // (MpiRuntime asks for it). Collect the outcome with WaitForPut or PollPut
  // on every rank; it is the same on every rank.
  //
  // Staging memory: about this rank's main-replica bytes, kept for the next
  // PutAsync (no new allocation while the state does not grow) until the
  // Store is destroyed.
  //
  // While an async put is in flight the store may serve Get, Read, Steps and
  // Metadata, but not Put or PutAsync.
  //
  // Errors here (the same on every rank; nothing started): the local input
  // errors of Put; FailedPrecondition if an async put has not been collected
  // yet, or if the communicator cannot run collectives on a second thread;
  // errors copying device memory. Errors found later (global validation,
  // I/O, an existing step) come from WaitForPut / PollPut, and a failed async
  // put commits nothing.
  Status PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options = {},
                  const Status& local = Status::OK());

  // Not collective. Blocks until the async put finishes and returns its
  // outcome; after that (and until the next PutAsync) returns the same
  // outcome again. FailedPrecondition if no async put was started.
  Status WaitForPut(SaveReport* report = nullptr);

  // Not collective, and local: nullopt while this rank's part of the async
  // put runs; once it has finished, its outcome, as WaitForPut. Ranks finish
  // at slightly different times, so before the next PutAsync (which refuses
  // while this rank has not collected the previous one) call WaitForPut on
  // every rank — it returns at once where PollPut already collected.
  std::optional<Status> PollPut(SaveReport* report = nullptr);

  // Collective. Loads `step` into `request`: every tensor leaf's view is filled
  // with the requested region, every object leaf's data with the saved bytes.
  // Returns the step's common state.
  //
  // Keys the step does not hold, and keys no rank asks for, are handled as
  // options.strict says (StrictHandling; by default an unknown key fails).
  //
  // Errors (identical on every rank):
  //   NotFound: unknown step, tensor key or object cell; unexpected keys in
  //     the kRaise* modes.
  //   InvalidArgument: missing keys in kRaiseAll.
  //   InvalidArgument: region outside the tensor, dtype or global-shape
  //     mismatch, malformed destination view.
  //   DataLoss: a corrupt or missing chunk record (naming key, offset, rank
  //     store) or a corrupt manifest.
  Result<LoadResult> Get(uint64_t step, StateDict* request, const LoadOptions& options = {},
                         const Status& local = Status::OK());

  // Not collective. Reads `region` of tensor `key` of `step` into `dest`.
  // Errors as for Get; InvalidArgument if dest's dtype or shape differs from
  // the tensor's dtype and the region's shape.
  Status Read(uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
              const LoadOptions& options = {});

  // Not collective: a "plain" load on one process, for conversion and
  // debugging. Reads whole tensors of `step` into buffers it allocates,
  // the objects' bytes and the common state. `keys` names tensors or objects
  // (ShardedTensor / ShardedObject keys; an object key brings every saved
  // cell of it); empty means every tensor and object of the step. Memory:
  // the requested tensors' bytes, plus the read pipeline's bound
  // (options.max_inflight_bytes).
  //
  // Errors: NotFound (step not committed, or a key that names neither a
  // tensor nor an object of the step); DataLoss as for Get;
  // FailedPrecondition if a tensor's buffer cannot be allocated.
  Result<PlainState> LoadPlain(uint64_t step, const std::vector<std::string>& keys = {},
                               const LoadOptions& options = {});

  // Collective (the store must be writable). Removes the tensors whose key
  // starts with `key_prefix` from committed step `step` and returns their
  // keys, sorted. Objects and the common state are kept. Either replaces
  // `step` in place (options.into_step unset or equal to `step`) or
  // publishes a new step options.into_step and leaves `step` as it is. No
  // data is copied: the new manifest references the same records. The new
  // manifest is published as Put publishes (temporary file, fsync, rename):
  // readers and a crash see the old step or the new one, whole. Records no
  // longer referenced are reclaimed by CollectGarbage.
  //
  // Errors (identical on every rank; nothing published):
  //   NotFound: `step` is not committed, or no tensor key starts with
  //     `key_prefix`.
  //   InvalidArgument: `key_prefix` is empty.
  //   AlreadyExists: into_step is another committed step and
  //     options.overwrite is false.
  //   FailedPrecondition: the store is read-only, or a write session or an
  //     async put is open.
  //   DataLoss: the manifest of `step` is corrupt.
  Result<std::vector<std::string>> RemoveTensors(uint64_t step, std::string_view key_prefix,
                                                 const RemoveTensorsOptions& options = {},
                                                 const Status& local = Status::OK());

  // Collective (the store must be writable). Deletes a committed step: its
  // manifest is removed atomically; its records are reclaimed by
  // CollectGarbage unless other steps reference them. NotFound if the step is
  // not committed.
  Status DeleteStep(uint64_t step, const Status& local = Status::OK());

  // Collective. Deletes every committed step `policy` does not keep and
  // returns the deleted steps. InvalidArgument (nothing deleted) if it would
  // delete every step.
  Result<std::vector<uint64_t>> ApplyRetention(const RetentionPolicy& policy, const Status& local = Status::OK());

  // Collective. Reclaims the space of records no committed step references
  // (deleted steps, failed or killed puts) and removes leftover temporary
  // files: unreferenced puts are dropped whole (their table files deleted),
  // partly referenced ones lose their dead records (compacted, once enough of
  // them is dead: GcOptions). Each rank handles its own rank store and those
  // of ranks beyond the world size. Never touches a record a committed step
  // references. `local` as in BeginStep.
  Status CollectGarbage(GcReport* report = nullptr, const GcOptions& options = {},
                        const Status& local = Status::OK());

  // Not collective. Committed steps, ascending.
  Result<std::vector<uint64_t>> Steps() const;
  // Not collective. The latest (largest) committed step, or nullopt if none.
  Result<std::optional<uint64_t>> LatestStep() const;
  // Collective (one all-gather, named like every collective call's first
  // round): rank 0's LatestStep on every rank, or its error on every rank.
  // Ranks that each read the catalog of a shared filesystem could see
  // different steps; this is how "the latest step" of a collective call is
  // chosen.
  Result<std::optional<uint64_t>> AgreedLatestStep();
  // Not collective. What AgreedLatestStep returned when the store opened:
  // rank 0's latest step (or its error), the same on every rank, carried by
  // the open's last round. For a call that opens the store and then at once
  // saves the next step or loads the latest (dcp.save, dcp.load) without a
  // round of its own. Later commits and deletions do not change it.
  const Result<std::optional<uint64_t>>& LatestStepAtOpen() const;
  // Not collective. What `step` holds: every tensor (key, dtype, global
  // shape, chunks, bytes) and every object cell (key, unique key, grid
  // place, size). NotFound if it is not committed.
  Result<StepMetadata> Metadata(uint64_t step) const;

  const std::string& root() const;

 private:
  class Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dcp

#endif  // DCP_STORE_H_
