// Copyright (c) dcp authors.

#include "engine/protocol/maintenance.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>

#include "engine/base/fault_injection.h"
#include "engine/base/file.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/query/live_records.h"
#include "engine/store/catalog.h"
#include "engine/store/gc.h"
#include "engine/store/key_layout.h"
#include "engine/wire/wire.h"

namespace dcp::protocol {
namespace {

// Rank 0 runs `fn`; every rank gets its status and, if OK, its payload.
Status OnRankZero(Communicator* comm, const std::function<Status(std::string* payload)>& fn, std::string* payload) {
  Result<std::string> mine = std::string();
  if (comm->rank() == 0) {
    std::string out;
    const Status s = fn(&out);
    mine = s.ok() ? Result<std::string>(std::move(out)) : Result<std::string>(s);
  }
  DCP_ASSIGN_OR_RETURN(std::string got, coord::BroadcastResult(comm, 0, std::move(mine)));
  if (payload != nullptr) *payload = std::move(got);
  return Status::OK();
}

// ApplyRetention's call in words, the same for the same policy.
std::string RetentionCall(const RetentionPolicy& policy) {
  const std::set<uint64_t> pinned(policy.keep_steps.begin(), policy.keep_steps.end());
  std::string call = "ApplyRetention(keep_last " + std::to_string(policy.keep_last) + ", keep_every " +
                     std::to_string(policy.keep_every) + ", keep_steps [";
  for (uint64_t s : pinned) call += (s == *pinned.begin() ? "" : ", ") + std::to_string(s);
  return call + "])";
}

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status DeleteStep(Communicator* comm, StoreContext* store, uint64_t step, const Status& local) {
  const std::string what = "delete of step " + std::to_string(step);
  const std::string& root = store->root();
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(comm, local, "DeleteStep(" + std::to_string(step) + ")", what));
  return OnRankZero(comm, [&](std::string*) { return storage::DeleteManifest(root, step); }, nullptr)
      .Annotate(what);
}

Result<std::vector<uint64_t>> ApplyRetention(Communicator* comm, StoreContext* store, const RetentionPolicy& policy,
                                             const Status& local) {
  const std::string what = "retention";
  const std::string& root = store->root();
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(comm, local, RetentionCall(policy), what));
  std::string deleted;
  DCP_RETURN_IF_ERROR(OnRankZero(
                          comm,
                          [&](std::string* out) -> Status {
                            DCP_ASSIGN_OR_RETURN(auto steps, storage::ListSteps(root));
                            std::set<uint64_t> keep(policy.keep_steps.begin(), policy.keep_steps.end());
                            const size_t n = static_cast<size_t>(std::min<uint64_t>(policy.keep_last, steps.size()));
                            keep.insert(steps.end() - static_cast<std::ptrdiff_t>(n), steps.end());
                            std::vector<uint64_t> drop;
                            for (uint64_t s : steps) {
                              const bool every = policy.keep_every > 0 && s % policy.keep_every == 0;
                              if (!keep.count(s) && !every) drop.push_back(s);
                            }
                            if (!steps.empty() && drop.size() == steps.size()) {
                              return Status::InvalidArgument("the retention policy would delete all " +
                                                             std::to_string(steps.size()) +
                                                             " committed steps; nothing was deleted");
                            }
                            for (uint64_t s : drop) DCP_RETURN_IF_ERROR(storage::DeleteManifest(root, s));
                            *out = wire::EncodeU64List(drop);
                            return Status::OK();
                          },
                          &deleted)
                          .Annotate(what));
  return wire::DecodeU64List(deleted, "list of deleted steps from rank 0");
}

Result<std::vector<std::string>> RemoveTensors(Communicator* comm, StoreContext* store, uint64_t step,
                                               std::string_view key_prefix, const RemoveTensorsOptions& options,
                                               const Status& caller) {
  const std::string& root = store->root();
  const uint64_t target = options.into_step.value_or(step);
  const std::string what = "removal of tensors '" + std::string(key_prefix) + "*' from step " + std::to_string(step) +
                           (target != step ? " into step " + std::to_string(target) : "");
  Status local = caller;
  if (local.ok() && key_prefix.empty()) {
    local = Status::InvalidArgument("the key prefix is empty: it would remove every tensor (DeleteStep deletes a step)");
  }
  // Rank 0 edits the step for every rank: by arguments every rank shares.
  const std::string call = "RemoveTensors(step " + std::to_string(step) + ", prefix '" + std::string(key_prefix) +
                           "', into step " + std::to_string(target) + (options.overwrite ? ", overwrite)" : ")");
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(comm, local, call, what));

  std::string removed;
  DCP_RETURN_IF_ERROR(
      OnRankZero(
          comm,
          [&](std::string* out) -> Status {
            const std::string path = storage::ManifestPath(root, step);
            DCP_ASSIGN_OR_RETURN(std::string bytes, storage::ReadManifestFile(root, step));
            DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, manifest::DecodeManifest(bytes, path));
            if (m.step != step) {
              return Status::DataLoss("manifest '" + path + "' describes step " + std::to_string(m.step));
            }
            if (target != step && !options.overwrite && storage::StepExists(root, target)) {
              return Status::AlreadyExists("step " + std::to_string(target) + " already exists in store '" + root +
                                           "' (set RemoveTensorsOptions::overwrite to replace it)");
            }
            std::vector<std::string> keys;
            auto kept = std::remove_if(m.tensors.begin(), m.tensors.end(), [&](const manifest::TensorEntry& t) {
              if (t.key.compare(0, key_prefix.size(), key_prefix) != 0) return false;
              keys.push_back(t.key);
              return true;
            });
            if (keys.empty()) {
              return Status::NotFound("no tensor of step " + std::to_string(step) + " has a key starting with '" +
                                      std::string(key_prefix) + "'");
            }
            m.tensors.erase(kept, m.tensors.end());
            if (target != step) {
              // A new step, of a generation of its own (it wrote no records,
              // so none counts as its unique bytes); never below what the
              // store already used, as BeginStep picks them.
              uint64_t seen = m.generation;
              auto latest = storage::LatestStep(root);
              if (latest.ok() && latest->has_value()) {
                auto latest_bytes = storage::ReadManifestFile(root, **latest);
                if (latest_bytes.ok()) {
                  auto lm = manifest::DecodeManifest(*latest_bytes, "latest manifest");
                  if (lm.ok()) seen = std::max(seen, lm->generation);
                }
              }
              if (auto newest = store->own()->NewestGeneration(); newest.ok()) seen = std::max(seen, *newest);
              m.generation = std::max(manifest::StepGenerationOf(static_cast<uint64_t>(NowNanos())),
                                      manifest::StepGenerationOf(seen) + manifest::kGenerationParts);
              m.step = target;
            }
            m.commit_time_ns = NowNanos();
            if (Status s = manifest::CheckManifestInvariants(m); !s.ok()) {
              return Status::Internal("refusing to publish an inconsistent manifest: " + s.message());
            }
            DCP_RETURN_IF_ERROR(base::CheckFaultPoint("remove.before_publish", 0));
            DCP_RETURN_IF_ERROR(storage::PublishManifest(root, target, m.generation, manifest::EncodeManifest(m)));
            *out = wire::EncodeStringList(keys);
            return Status::OK();
          },
          &removed)
          .Annotate(what));
  return wire::DecodeStringList(removed, "list of removed tensors from rank 0");
}

Status CollectGarbage(Communicator* comm, StoreContext* store, const GcOptions& options, const Status& local,
                      GcReport* report) {
  const std::string what = "garbage collection";
  const std::string& root = store->root();
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, local, what, "CollectGarbage"));

  // Rank 0 fixes the set of committed steps (and sweeps temporary files).
  GcReport mine;
  std::string listed;
  DCP_RETURN_IF_ERROR(OnRankZero(
                          comm,
                          [&](std::string* out) -> Status {
                            DCP_ASSIGN_OR_RETURN(mine.temporary_files_removed, storage::RemoveTemporaries(root));
                            DCP_ASSIGN_OR_RETURN(auto steps, storage::ListSteps(root));
                            *out = wire::EncodeU64List(steps);
                            return Status::OK();
                          },
                          &listed)
                          .Annotate(what));
  DCP_ASSIGN_OR_RETURN(const std::vector<uint64_t> steps,
                       wire::DecodeU64List(listed, "list of committed steps from rank 0"));

  // The rank stores this rank cleans: its own, and those of ranks >= world size.
  const uint32_t rank = static_cast<uint32_t>(comm->rank());
  const uint32_t world = static_cast<uint32_t>(comm->size());
  Status s;
  std::vector<uint32_t> handled = {rank};
  auto names = base::ListDir(storage::RanksDir(root));
  if (names.ok()) {
    for (const std::string& n : *names) {
      const auto r = storage::ParseRankStoreName(n);
      if (r && *r >= world && *r % world == rank) handled.push_back(*r);
    }
  } else {
    s = names.status();
  }
  // References of every committed step into those stores.
  std::map<uint32_t, storage::LiveRecords> live;
  for (uint64_t step : steps) {
    if (!s.ok()) break;
    auto bytes = storage::ReadManifestFile(root, step);
    if (!bytes.ok()) {
      s = bytes.status();
      break;
    }
    auto m = manifest::DecodeManifest(*bytes, storage::ManifestPath(root, step));
    if (!m.ok()) {
      // A manifest we cannot read would hide references: collect nothing.
      s = m.status().Annotate("refusing to collect garbage");
      break;
    }
    query::AddLiveRecords(
        *m, [&](uint32_t r) { return std::find(handled.begin(), handled.end(), r) != handled.end(); }, &live);
  }
  for (uint32_t r : handled) {
    if (!s.ok()) break;
    storage::RankGcStats stats;
    std::unique_ptr<storage::RankStore> other;
    storage::RankStore* rank_store = store->own();
    if (r != rank) {
      auto opened = store->backend()->Open(storage::RankStorePath(root, r), r, storage::RankStore::Mode::kWrite,
                                           storage::RankStoreOptions{.repair = store->options().repair});
      if (!opened.ok()) {
        s = opened.status();
        break;
      }
      other = std::move(opened).value();
      rank_store = other.get();
    }
    s = storage::CollectRankStore(rank_store, live[r], options.compact_dead_fraction, &stats);
    mine.generations_removed += stats.generations_removed;
    mine.records_removed += stats.records_removed;
    mine.bytes_before += stats.bytes_before;
    mine.bytes_after += stats.bytes_after;
    mine.bytes_pending += stats.bytes_pending;
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, s, what));
  // Read instances keep every table file they have seen open (so a reader is
  // never cut off mid-step); drop them, or the files deleted now would keep
  // their disk space until the store is closed.
  store->ReopenStores();
  if (report != nullptr) *report = mine;
  return Status::OK();
}

}  // namespace dcp::protocol
