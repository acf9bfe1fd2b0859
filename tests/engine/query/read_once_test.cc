// Copyright (c) dcp authors.
//
// The read-once executor on in-process ranks over the two-store fixture:
// bit-exact results, each shared chunk read once, and failures (injected I/O
// errors, records that do not match the manifest, bytes damaged in transit,
// a rank whose request failed) reported by the rank that met them, with no
// rank left waiting.

#include "engine/query/read_once.h"

#include <catch2/catch.hpp>

#include "engine/store/fault_rank_store.h"
#include "engine/coord/agreement.h"
#include "tests/engine/query/query_fixture.h"
#include "tests/testing/rank_runner.h"

namespace dcp::query {
namespace {

using testing::StatusIs;

// Rows [begin, end) of "w" (12 x 6) that rank r asks for, per test.
using Rows = std::vector<std::pair<int64_t, int64_t>>;

struct Outcome {
  std::vector<Status> local;   // what ExecuteReadOnce returned on each rank
  std::vector<Status> agreed;  // after AgreeOnStatus
  std::vector<std::string> check;
  std::vector<LoadReport> report;
};

// A communicator that damages the last byte of every non-empty all-to-all
// message sent to rank `victim` (the end of a record's payload).
class DamagingCommunicator : public Communicator {
 public:
  DamagingCommunicator(Communicator* base, int victim) : base_(base), victim_(victim) {}
  int rank() const override { return base_->rank(); }
  int size() const override { return base_->size(); }
  Status Barrier() override { return base_->Barrier(); }
  Status Broadcast(int root, std::string* bytes) override { return base_->Broadcast(root, bytes); }
  Status AllGather(std::string_view local, std::vector<std::string>* all) override {
    return base_->AllGather(local, all);
  }
  Status Gather(int root, std::string_view local, std::vector<std::string>* all) override {
    return base_->Gather(root, local, all);
  }
  Status AllToAll(const std::vector<std::string>& send, std::vector<std::string>* recv) override {
    std::vector<std::string> copy = send;
    std::string& m = copy[static_cast<size_t>(victim_)];
    if (m.size() > 1) m.back() ^= 0x5a;
    return base_->AllToAll(copy, recv);
  }
  Result<std::unique_ptr<Communicator>> Duplicate() override { return base_->Duplicate(); }

 private:
  Communicator* base_;
  int victim_;
};

// `fail_reads_on`: that rank's reads of records fail (its StoreSet opens the
// rank stores through a fault backend whose every Get returns IOError).
Outcome Run(StepFixture& f, const Rows& rows, const LoadOptions& options, int fail_planning_on = -1,
            int damage_to = -1, int fail_reads_on = -1) {
  const int n = static_cast<int>(rows.size());
  Outcome o;
  o.local.resize(static_cast<size_t>(n));
  o.agreed.resize(static_cast<size_t>(n));
  o.check.resize(static_cast<size_t>(n));
  o.report.resize(static_cast<size_t>(n));
  testing::RunRanks(n, [&](int rank, Communicator* base) {
    DamagingCommunicator damaging(base, damage_to);
    Communicator* comm = damage_to >= 0 ? &damaging : base;
    auto index = f.Index();
    storage::FaultBackend failing(&f.memory);
    failing.FailAt(storage::FaultBackend::Op::kGet, 1, -1, storage::FaultBackend::kForever);
    storage::RankStoreBackend* backend = &f.memory;
    if (rank == fail_reads_on) backend = &failing;
    StoreSet stores(f.root, nullptr, backend);
    const auto [begin, end] = rows[static_cast<size_t>(rank)];
    const Box region{{begin, 0}, {end - begin, 6}};
    testing::HostTensor out(DType::kFloat32, region.shape);
    testing::HostTensor s(DType::kInt64, {});
    ReadPlanner planner(index.get());
    Status local = planner.Add("w", DType::kFloat32, {12, 6}, region, out.view(), "w");
    if (local.ok() && rank % 2 == 0) local = planner.Add("s", DType::kInt64, {}, Box{}, s.view(), "s");
    if (rank == fail_planning_on) local = Status::InvalidArgument("a bad request on rank " + std::to_string(rank));
    const ReadPlan plan = planner.Finish();
    LoadReport report;
    const Status st = ExecuteReadOnce(comm, &stores, &index->manifest(), plan, local, options, &report);
    o.local[static_cast<size_t>(rank)] = st;
    o.agreed[static_cast<size_t>(rank)] = coord::AgreeOnStatus(base, st);
    o.report[static_cast<size_t>(rank)] = report;
    if (st.ok()) {
      o.check[static_cast<size_t>(rank)] = testing::CheckRegion("w", {12, 6}, region, out.view());
      if (rank % 2 == 0 && o.check[static_cast<size_t>(rank)].empty()) {
        o.check[static_cast<size_t>(rank)] = testing::CheckRegion("s", {}, Box{}, s.view());
      }
    }
  });
  return o;
}

LoadReport Sum(const std::vector<LoadReport>& v) {
  LoadReport t;
  for (const auto& r : v) {
    t.chunks_read += r.chunks_read;
    t.bytes_read += r.bytes_read;
    t.chunks_sent += r.chunks_sent;
    t.bytes_sent += r.bytes_sent;
    t.chunks_received += r.chunks_received;
    t.bytes_received += r.bytes_received;
  }
  return t;
}

TEST_CASE("read-once: overlapping requests are bit-exact and each chunk is read once", "[query]") {
  StepFixture f;
  // Chunks of w: rows 0-3, 3-6, 6-9, 9-12. Needs: rank 0 rows 0-8 (chunks
  // 0,1,2), rank 1 rows 4-12 (1,2,3), rank 2 everything, rank 3 rows 11-12
  // (3). Ranks 0 and 2 need the scalar s.
  const Rows rows = {{0, 8}, {4, 12}, {0, 12}, {11, 12}};
  for (uint64_t inflight : {uint64_t{1}, uint64_t{256} << 20}) {
    for (int threads : {1, 3}) {
      LoadOptions options;
      options.read_once = true;
      options.max_inflight_bytes = inflight;
      options.read_threads = threads;
      const Outcome o = Run(f, rows, options);
      for (size_t r = 0; r < rows.size(); ++r) {
        INFO("rank " << r << ", in flight " << inflight << ", threads " << threads);
        REQUIRE_OK(o.local[r]);
        CHECK(o.check[r] == "");
      }
      // Five distinct chunks (four of w, s), each read by exactly one rank;
      // every other need arrives over the communicator: 4+3+5+1 = 13 needs.
      const LoadReport t = Sum(o.report);
      CHECK(t.chunks_read == 5);
      CHECK(t.bytes_read == f.m->tensors[0].stored_bytes() + f.m->tensors[1].stored_bytes());
      CHECK(t.chunks_sent == 13 - 5);
      CHECK(t.chunks_received == t.chunks_sent);
      CHECK(t.bytes_received == t.bytes_sent);
    }
  }
}

TEST_CASE("read-once: a single rank and disjoint needs read directly", "[query]") {
  StepFixture f;
  LoadOptions options;
  options.read_once = true;
  Outcome o = Run(f, {{0, 12}}, options);
  REQUIRE_OK(o.local[0]);
  CHECK(o.check[0] == "");
  CHECK(o.report[0].chunks_read == 5);
  CHECK(o.report[0].chunks_sent == 0);

  o = Run(f, {{0, 6}, {6, 12}}, options);  // rank 1 does not need s
  for (size_t r = 0; r < 2; ++r) {
    REQUIRE_OK(o.local[r]);
    CHECK(o.check[r] == "");
    CHECK(o.report[r].chunks_received == 0);
  }
  CHECK(Sum(o.report).chunks_read == 5);
}

TEST_CASE("read-once: a read failure on one rank fails it; the others finish", "[query]") {
  StepFixture f;
  LoadOptions options;
  options.read_once = true;
  options.max_inflight_bytes = 1;  // many rounds: the failure lands in an early one
  for (int victim = 0; victim < 3; ++victim) {
    const Outcome o = Run(f, {{0, 12}, {0, 12}, {0, 12}}, options, -1, -1, /*fail_reads_on=*/victim);
    INFO("victim " << victim);
    for (size_t r = 0; r < 3; ++r) {
      CHECK_THAT(o.agreed[r], StatusIs(StatusCode::kIOError, "rank " + std::to_string(victim) +
                                                                 ": tensor '"));
      CHECK(o.agreed[r] == o.agreed[0]);
      CHECK(o.local[r].ok() == (static_cast<int>(r) != victim));
    }
    CHECK_THAT(o.agreed[0], StatusIs(StatusCode::kIOError, "injected I/O error in get #"));
  }
}

TEST_CASE("read-once: a record that does not match the manifest fails only its reader", "[query]") {
  StepFixture f;
  for (auto& c : f.m->tensors[1].chunks) {
    if (c.box.origin == Shape{9, 0}) c.record.checksum.lo ^= 1;
  }
  LoadOptions options;
  options.read_once = true;
  const Outcome o = Run(f, {{0, 12}, {6, 12}, {8, 12}}, options);
  int failed = 0;
  for (size_t r = 0; r < 3; ++r) {
    failed += o.local[r].ok() ? 0 : 1;
    CHECK_THAT(o.agreed[r], StatusIs(StatusCode::kDataLoss, "tensor 'w' chunk at offset (9, 0) in rank store 1 at '" +
                                                                storage::RankStorePath(f.root, 1) +
                                                                "' does not match the manifest"));
    CHECK(o.agreed[r] == o.agreed[0]);
  }
  CHECK(failed == 1);
}

TEST_CASE("read-once: a record whose size is not the manifest's still travels whole", "[query]") {
  // A reader keeps the records it sends at places set aside by the
  // manifest's stored sizes; a record of another size (checked against the
  // manifest all the same: raw size, checksum) is kept apart and sent whole.
  StepFixture f;
  for (auto& c : f.m->tensors[1].chunks) {
    if (c.box.origin == Shape{3, 0}) c.record.stored_size += 7;
    if (c.box.origin == Shape{9, 0}) c.record.stored_size -= 1;
  }
  for (uint64_t inflight : {uint64_t{1}, uint64_t{256} << 20}) {
    LoadOptions options;
    options.read_once = true;
    options.max_inflight_bytes = inflight;
    const Outcome o = Run(f, {{0, 12}, {0, 12}, {0, 12}}, options);
    for (size_t r = 0; r < 3; ++r) {
      INFO("rank " << r << ", in flight " << inflight);
      REQUIRE_OK(o.local[r]);
      CHECK(o.check[r] == "");
    }
    const LoadReport t = Sum(o.report);
    CHECK(t.chunks_read == 5);
    CHECK(t.chunks_received == t.chunks_sent);
    CHECK(t.bytes_received == t.bytes_sent);
  }
}

TEST_CASE("read-once: bytes damaged in transit are caught by the receiver", "[query]") {
  StepFixture f;
  LoadOptions options;
  options.read_once = true;
  // Ranks 0 and 1 need every chunk; rank 0 receives what rank 1 reads.
  const Outcome o = Run(f, {{0, 12}, {0, 12}}, options, -1, /*damage_to=*/0);
  CHECK(o.local[1].ok());
  CHECK_THAT(o.local[0], StatusIs(StatusCode::kDataLoss, "(received from rank 1)"));
  for (size_t r = 0; r < 2; ++r) CHECK_THAT(o.agreed[r], StatusIs(StatusCode::kDataLoss, "rank 0: tensor 'w'"));
}

TEST_CASE("read-once: a rank whose request failed stops every rank before any read", "[query]") {
  StepFixture f;
  LoadOptions options;
  options.read_once = true;
  const Outcome o = Run(f, {{0, 12}, {0, 12}, {0, 12}}, options, /*fail_planning_on=*/1);
  for (size_t r = 0; r < 3; ++r) {
    CHECK_THAT(o.agreed[r], StatusIs(StatusCode::kInvalidArgument, "rank 1: a bad request on rank 1"));
    CHECK(o.report[r].chunks_read == 0);
  }
  CHECK(o.local[0].ok());
  CHECK(o.local[2].ok());
}

}  // namespace
}  // namespace dcp::query
