// Copyright (c) dcp authors.
// Tests of engine/protocol/commit.cc: merging rank fragments and publishing a step.
//
// CommitStep merges metadata only, so fragments are built by hand and refer
// to records that were never written.

#include "engine/protocol/commit.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/fault_injection.h"
#include "engine/codec/chunk_codec.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::protocol {
namespace {

namespace fs = std::filesystem;
using dcp::testing::RunRanks;
using dcp::testing::StatusIs;
using dcp::testing::TempDir;
using manifest::ChunkEntry;
using manifest::ObjectEntry;
using manifest::StepManifest;
using manifest::TensorEntry;

constexpr uint64_t kStep = 42;
constexpr uint64_t kGeneration = 0x77;

manifest::RecordRef Record(uint64_t raw_size, int rank) {
  manifest::RecordRef r;
  r.store_rank = static_cast<uint32_t>(rank);
  r.generation = kGeneration;
  r.raw_size = raw_size;
  r.stored_size = raw_size + codec::kChunkHeaderSize;
  r.checksum = {static_cast<uint64_t>(rank) + 1, raw_size};
  return r;
}

// Rank 0's skeleton for an n-rank put: "weight" (2n x 3 float32, two rows
// per rank), "bias" (n int64, one per rank), "step" (0-d, written by rank 0).
StepManifest Skeleton(int n) {
  StepManifest m;
  m.step = kStep;
  m.generation = kGeneration;
  m.world_size = static_cast<uint32_t>(n);
  m.common_state = "common";
  TensorEntry w;
  w.key = "weight";
  w.dtype = DType::kFloat32;
  w.global_shape = {2 * n, 3};
  TensorEntry b;
  b.key = "bias";
  b.dtype = DType::kInt64;
  b.global_shape = {n};
  TensorEntry s;
  s.key = "step";
  s.dtype = DType::kInt64;
  m.tensors = {w, b, s};  // not in canonical order: the merge sorts
  return m;
}

// What rank r wrote: its rows of "weight", its element of "bias", one object,
// and (rank 0) the scalar "step".
// Like the shard writer's, a fragment's tensor entries carry dtype and global
// shape (the payload codec needs the rank of the global shape for the boxes).
StepManifest Fragment(int rank, int n) {
  const StepManifest skeleton = Skeleton(n);
  StepManifest f;
  TensorEntry w = skeleton.tensors[0];
  w.chunks.push_back({Box{{2 * rank, 0}, {2, 3}}, Record(2 * 3 * 4, rank)});
  TensorEntry b = skeleton.tensors[1];
  b.chunks.push_back({Box{{rank}, {1}}, Record(8, rank)});
  f.tensors = {w, b};
  if (rank == 0) {
    TensorEntry s = skeleton.tensors[2];
    s.chunks.push_back({Box{{}, {}}, Record(8, rank)});
    f.tensors.push_back(s);
  }
  ObjectEntry o;
  o.key = "rng";
  o.global_shape = {100};
  o.global_offset = {rank};
  o.record = Record(32, rank);
  f.objects.push_back(o);
  return f;
}

// Runs CommitStep on n in-process ranks; `local` and `fragment` give each
// rank's inputs.
std::vector<Status> Commit(int n, const std::string& root, const std::function<Status(int)>& local,
                           const std::function<StepManifest(int rank, int n)>& fragment) {
  std::vector<Status> out(static_cast<size_t>(n));
  RunRanks(n, [&](int rank, Communicator* comm) {
    CommitRequest req;
    req.root = root;
    if (rank == 0) req.skeleton = Skeleton(n);
    out[static_cast<size_t>(rank)] = CommitStep(comm, req, local(rank), fragment(rank, n));
  });
  return out;
}

Status Ok(int) { return Status::OK(); }

std::string NewStore(const TempDir& tmp) {
  const std::string root = tmp.Sub("store");
  REQUIRE_OK(storage::CreateOrCheckStoreRoot(root));
  return root;
}

void CheckNothingPublished(const std::string& root) {
  CHECK_FALSE(storage::StepExists(root, kStep));
  CHECK(ValueOrDie(storage::ListSteps(root)).empty());
  CHECK_FALSE(fs::exists(storage::LatestPath(root)));
  CHECK(fs::is_empty(storage::StepsDir(root)));  // no temporaries either
}

TEST_CASE("CommitStep publishes the merged manifest", "[coord]") {
  const int n = GENERATE(1, 2, 4, 8);
  INFO(n << " ranks");
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const std::vector<Status> statuses = Commit(n, root, Ok, Fragment);
  for (const Status& s : statuses) CHECK_OK(s);

  REQUIRE(storage::StepExists(root, kStep));
  CHECK(ValueOrDie(storage::LatestStep(root)) == std::optional<uint64_t>(kStep));
  const StepManifest m =
      ValueOrDie(manifest::DecodeManifest(ValueOrDie(storage::ReadManifestFile(root, kStep)), "published"));
  CHECK(m.step == kStep);
  CHECK(m.generation == kGeneration);
  CHECK(m.world_size == static_cast<uint32_t>(n));
  CHECK(m.commit_time_ns > 0);
  CHECK(m.common_state == "common");
  REQUIRE(m.tensors.size() == 3);
  CHECK(m.tensors[0].key == "bias");
  CHECK(m.tensors[1].key == "step");
  CHECK(m.tensors[2].key == "weight");
  CHECK(m.tensors[0].chunks.size() == static_cast<size_t>(n));
  CHECK(m.tensors[1].chunks.size() == 1);
  REQUIRE(m.tensors[2].chunks.size() == static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const ChunkEntry& c = m.tensors[2].chunks[static_cast<size_t>(r)];
    CHECK(c.box == Box{{2 * r, 0}, {2, 3}});
    CHECK(c.record.store_rank == static_cast<uint32_t>(r));
    CHECK(c.record.raw_size == 24);
  }
  REQUIRE(m.objects.size() == static_cast<size_t>(n));
  CHECK(m.objects[0].unique_key() == "rng/shard_0_100");
}

TEST_CASE("CommitStep over an existing step replaces it", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  for (const Status& s : Commit(2, root, Ok, Fragment)) REQUIRE_OK(s);
  const std::string first = ValueOrDie(storage::ReadManifestFile(root, kStep));
  // The same step again, with different record checksums: the second
  // publication must win.
  const auto changed = [](int rank, int n) {
    StepManifest f = Fragment(rank, n);
    f.tensors[0].chunks[0].record.checksum = {999, 999};
    return f;
  };
  for (const Status& s : Commit(2, root, Ok, changed)) REQUIRE_OK(s);
  const StepManifest m =
      ValueOrDie(manifest::DecodeManifest(ValueOrDie(storage::ReadManifestFile(root, kStep)), "published"));
  CHECK(m.FindTensor("weight")->chunks[0].record.checksum == codec::Hash128{999, 999});
  CHECK(ValueOrDie(storage::ListSteps(root)) == std::vector<uint64_t>{kStep});
}

TEST_CASE("A failing rank fails the commit everywhere and publishes nothing", "[coord]") {
  const int n = GENERATE(2, 4, 8);
  INFO(n << " ranks");
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const int bad = n - 1;
  const auto local = [&](int rank) { return rank == bad ? Status::IOError("disk full") : Status::OK(); };
  const std::vector<Status> statuses = Commit(n, root, local, Fragment);
  const Status expected = Status::IOError("rank " + std::to_string(bad) + ": disk full");
  for (const Status& s : statuses) CHECK(s == expected);
  CheckNothingPublished(root);
}

TEST_CASE("Several failing ranks: the lowest is reported everywhere", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const auto local = [](int rank) {
    if (rank == 2) return Status::DataLoss("bad chunk on 2");
    if (rank == 3) return Status::IOError("bad disk on 3");
    return Status::OK();
  };
  const std::vector<Status> statuses = Commit(4, root, local, Fragment);
  for (const Status& s : statuses) {
    CHECK(s == Status::DataLoss("rank 2: bad chunk on 2 (2 ranks failed; the lowest is shown)"));
  }
  CheckNothingPublished(root);
}

TEST_CASE("Rank 0 failing is reported like any other rank", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const auto local = [](int rank) { return rank == 0 ? Status::InvalidArgument("bad input") : Status::OK(); };
  for (const Status& s : Commit(4, root, local, Fragment)) {
    CHECK(s == Status::InvalidArgument("rank 0: bad input"));
  }
  CheckNothingPublished(root);
}

TEST_CASE("A merged manifest with a hole is refused as Internal", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const auto holey = [](int rank, int n) {
    StepManifest f = Fragment(rank, n);
    if (rank == 3) f.tensors[0].chunks.clear();  // rank 3's rows of "weight" are missing
    return f;
  };
  const std::vector<Status> statuses = Commit(4, root, Ok, holey);
  for (const Status& s : statuses) {
    CHECK_THAT(s, StatusIs(StatusCode::kInternal, "refusing to publish an inconsistent manifest"));
    CHECK_THAT(s, StatusIs(StatusCode::kInternal, "'weight' chunks leave 6 elements uncovered"));
    CHECK(s == statuses[0]);
  }
  CheckNothingPublished(root);
}

TEST_CASE("Overlapping fragments are refused as Internal", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const auto overlapping = [](int rank, int n) {
    StepManifest f = Fragment(rank, n);
    if (rank == 1) f.tensors[1].chunks[0].box = Box{{0}, {1}};  // rank 1 claims rank 0's bias
    return f;
  };
  for (const Status& s : Commit(2, root, Ok, overlapping)) {
    CHECK_THAT(s, StatusIs(StatusCode::kInternal, "'bias' has overlapping chunks"));
  }
  CheckNothingPublished(root);
}

TEST_CASE("Chunks of an undeclared tensor are refused naming the rank", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  const auto extra = [](int rank, int n) {
    StepManifest f = Fragment(rank, n);
    if (rank == 1) {
      TensorEntry t;
      t.key = "stray";
      t.global_shape = {1};
      t.chunks.push_back({Box{{0}, {1}}, Record(4, rank)});
      f.tensors.push_back(t);
    }
    return f;
  };
  for (const Status& s : Commit(3, root, Ok, extra)) {
    CHECK_THAT(s, StatusIs(StatusCode::kInternal, "rank 1 wrote chunks of undeclared tensor 'stray'"));
  }
  CheckNothingPublished(root);
}

TEST_CASE("A failure to publish is reported on every rank", "[coord]") {
  TempDir tmp;
  const std::string root = NewStore(tmp);
  SECTION("injected fault before publication") {
    base::ArmFaultPoint("put.before_publish");
    const std::vector<Status> statuses = Commit(4, root, Ok, Fragment);
    base::DisarmAllFaultPoints();
    for (const Status& s : statuses) {
      CHECK_THAT(s, StatusIs(StatusCode::kIOError, "injected fault at 'put.before_publish'"));
      CHECK(s == statuses[0]);
    }
    CheckNothingPublished(root);
  }
  SECTION("the store root is gone") {
    fs::remove_all(root);
    const std::vector<Status> statuses = Commit(4, root, Ok, Fragment);
    CHECK_FALSE(statuses[0].ok());
    for (const Status& s : statuses) CHECK(s == statuses[0]);
    CHECK_FALSE(fs::exists(root));
  }
}

}  // namespace
}  // namespace dcp::protocol

namespace dcp::protocol {
namespace {

TEST_CASE("A commit message carries the fragment 8 bytes in, where it decodes in place", "[coord]") {
  const std::string payload = manifest::EncodeManifestPayload(Fragment(1, 2));
  const std::string message = EncodeCommitMessage(Status::OK(), payload);
  REQUIRE(message.size() == 8 + payload.size());
  CHECK(message.compare(8, std::string::npos, payload) == 0);
  Status status;
  std::string_view fragment;
  REQUIRE_OK(DecodeCommitMessage(message, 1, &status, &fragment));
  REQUIRE_OK(status);
  CHECK(fragment.data() == message.data() + 8);

  std::string bad = message;
  bad[3] = 1;  // padding must be zero
  CHECK_THAT(DecodeCommitMessage(bad, 1, &status, &fragment),
             StatusIs(StatusCode::kInternal, "commit message from rank 1"));
  CHECK_THAT(DecodeCommitMessage(message.substr(0, 5), 1, &status, &fragment), StatusIs(StatusCode::kInternal));

  const std::string failed = EncodeCommitMessage(Status::IOError("disk"), payload);
  REQUIRE_OK(DecodeCommitMessage(failed, 1, &status, &fragment));
  CHECK_THAT(status, StatusIs(StatusCode::kIOError, "disk"));
  CHECK(fragment.empty());
}

TEST_CASE("MergeFragments takes rank 0's fragment as it is", "[coord]") {
  const int n = 2;
  StepManifest own = Fragment(0, n);
  const std::string other = manifest::EncodeManifestPayload(Fragment(1, n));
  auto merged = MergeFragments(Skeleton(n), {std::string_view(), other}, &own);
  REQUIRE_OK(merged.status());
  const std::string p0 = manifest::EncodeManifestPayload(Fragment(0, n));
  auto reference = MergeFragments(Skeleton(n), {p0, other});
  REQUIRE_OK(reference.status());
  merged->commit_time_ns = reference->commit_time_ns;
  CHECK(manifest::EncodeManifest(*merged) == manifest::EncodeManifest(*reference));
}

}  // namespace
}  // namespace dcp::protocol
