// Copyright (c) dcp authors.
//
// Fully parallel saves and read-once loads under real mpirun (driven by
// ctest, see CMakeLists.txt), on the synthetic GPT state with data-parallel
// replicas:
//
//   parallel_mpi_test roundtrip ROOT   save TP2xPP1xDP2 fully parallel (every rank
//                                      writes its share), load read-once in the same
//                                      layout and in TP1xPP2xDP2, checking every byte
//                                      and the per-rank byte balance
//   parallel_mpi_test faults ROOT      run with DCP_FAULT_POINTS=get.read_chunk@2:
//                                      a read-once get and a direct get fail with the
//                                      same error on every rank; then a fully parallel
//                                      put with an I/O failure injected on rank 2 fails
//                                      the same way everywhere and commits nothing;
//                                      step 1 still loads (read-once)
//
// Needs 4 ranks. Exit code 0 iff the check passed on every rank.

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "dcp/dcp.h"
#include "engine/base/fault_injection.h"
#include "tests/mpi/mpi_checks.h"
#include "tools/synthetic/gpt_state.h"

namespace {

using dcp::testing::Check;
using dcp::testing::SameErrorEverywhere;
using dcp::testing::Verdict;

// Every rank's value of v.
std::vector<uint64_t> AllValues(dcp::Communicator* comm, uint64_t v) {
  std::vector<std::string> all;
  std::vector<uint64_t> out;
  if (!comm->AllGather(std::to_string(v), &all).ok()) return out;
  for (const auto& a : all) out.push_back(std::stoull(a));
  return out;
}

// Loads step `step` in `layout` (read-once or not) and checks every byte.
bool LoadAndVerify(dcp::Communicator* comm, dcp::Store* store, uint64_t step, const dcp::synthetic::Layout& layout,
                   bool read_once, dcp::LoadReport* report = nullptr) {
  dcp::synthetic::GptState state(dcp::testing::SmallGptConfig(), layout, comm->rank(), false);
  auto md = store->Metadata(step);
  if (!md.ok()) return Check(false, md.status().ToString());
  state.RequestSavedObjectCells(*md);
  dcp::LoadOptions options;
  options.read_once = read_once;
  options.max_inflight_bytes = 1 << 20;  // several exchange rounds
  auto loaded = store->Get(step, &state.state_dict(), options);
  if (!loaded.ok()) return Check(false, loaded.status().ToString());
  if (report != nullptr) *report = loaded->report;
  const std::string mismatch = state.Verify();
  return Check(mismatch.empty(), layout.ToString() + ": " + mismatch);
}

int Roundtrip(dcp::Communicator* comm, const std::string& root) {
  const dcp::synthetic::Layout layout{2, 1, 2};
  bool ok = true;
  auto store = dcp::Store::Open(root, comm);
  if (!store.ok()) return Verdict(comm, false, store.status().ToString());
  dcp::synthetic::GptState state(dcp::testing::SmallGptConfig(), layout, comm->rank(), true);
  const dcp::Status put = (*store)->Put(1, state.state_dict());
  ok = Check(put.ok(), put.ToString()) && ok;

  // Read-once in the saved layout: each chunk is needed by its two DP
  // replicas, read by one of them, and every rank gets some from the other.
  dcp::LoadReport report;
  ok = ok && LoadAndVerify(comm, store->get(), 1, layout, true, &report);
  const auto read = AllValues(comm, report.chunks_read);
  const auto received = AllValues(comm, report.chunks_received);
  const auto sent = AllValues(comm, report.chunks_sent);
  auto md = (*store)->Metadata(1);
  ok = ok && md.ok();
  if (ok) {
    uint64_t total_read = 0, total_sent = 0, total_received = 0;
    for (size_t r = 0; r < read.size(); ++r) {
      total_read += read[r];
      total_sent += sent[r];
      total_received += received[r];
      ok = Check(received[r] > 0, "rank " + std::to_string(r) + " received nothing") && ok;
    }
    ok = Check(total_read == md->info.num_chunks, "every chunk read once: " + std::to_string(total_read) + " vs " +
                                                      std::to_string(md->info.num_chunks)) && ok;
    ok = Check(total_sent == total_received, "sent == received") && ok;
  }
  // Another layout: PP2 instead of TP2, still two DP replicas.
  ok = ok && LoadAndVerify(comm, store->get(), 1, dcp::synthetic::Layout{1, 2, 2}, true);
  ok = ok && LoadAndVerify(comm, store->get(), 1, layout, false);
  return Verdict(comm, ok, "read-once / fully parallel round trip");
}

int Faults(dcp::Communicator* comm, const std::string& root) {
  const dcp::synthetic::Layout layout{2, 1, 2};
  bool ok = true;
  {
    auto store = dcp::Store::Open(root, comm);
    if (!store.ok()) return Verdict(comm, false, store.status().ToString());
    dcp::synthetic::GptState state(dcp::testing::SmallGptConfig(), layout, comm->rank(), true);
    ok = Check((*store)->Put(1, state.state_dict()).ok(), "put of step 1") && ok;

    // DCP_FAULT_POINTS=get.read_chunk@2: rank 2 cannot read any chunk.
    for (bool read_once : {true, false}) {
      dcp::synthetic::GptState req(dcp::testing::SmallGptConfig(), layout, comm->rank(), false);
      auto md = (*store)->Metadata(1);
      if (md.ok()) req.RequestSavedObjectCells(*md);
      dcp::LoadOptions options;
      options.read_once = read_once;
      options.max_inflight_bytes = 1 << 20;
      ok = SameErrorEverywhere(comm, (*store)->Get(1, &req.state_dict(), options).status(),
                               {"I/O error: get of step 1: rank 2: tensor '",
                                "injected fault at 'get.read_chunk' on rank 2"}) &&
           ok;
    }
    dcp::base::DisarmAllFaultPoints();

    // A fully parallel put whose rank 2 (a data-parallel replica, a writer
    // only because of fully_parallel) fails to ingest.
    dcp::base::ArmFaultPoint("put.before_ingest", 2);
    ok = SameErrorEverywhere(comm, (*store)->Put(2, state.state_dict()),
                             {"put of step 2: rank 2: injected fault at 'put.before_ingest'"}) &&
         ok;
    dcp::base::DisarmAllFaultPoints();
    auto steps = (*store)->Steps();
    ok = Check(steps.ok() && *steps == std::vector<uint64_t>{1}, "only step 1 is committed") && ok;
  }
  ok = Verdict(comm, ok, "fault agreement") == 0;
  if (!ok) return 1;
  // Step 1 is intact, read-once and direct.
  dcp::StoreOptions so;
  so.read_only = true;
  auto store = dcp::Store::Open(root, comm, so);
  if (!store.ok()) return Verdict(comm, false, store.status().ToString());
  ok = LoadAndVerify(comm, store->get(), 1, layout, true);
  ok = LoadAndVerify(comm, store->get(), 1, dcp::synthetic::Layout{1, 2, 2}, false) && ok;
  return Verdict(comm, ok, "step 1 after the failures");
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok() || argc < 3) {
    std::fprintf(stderr, "usage: parallel_mpi_test roundtrip|faults ROOT\n");
    return 2;
  }
  auto comm = dcp::NewMpiWorldCommunicator();
  if (!comm.ok()) return 1;
  if ((*comm)->size() != 4) {
    std::fprintf(stderr, "parallel_mpi_test needs 4 ranks\n");
    return 2;
  }
  const std::string mode = argv[1], root = argv[2];
  if (mode == "roundtrip") return Roundtrip(comm->get(), root);
  if (mode == "faults") return Faults(comm->get(), root);
  return 2;
}
