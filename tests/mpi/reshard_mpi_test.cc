// Copyright (c) dcp authors.
//
// Multi-process tests under real mpirun (driven by ctest, see CMakeLists.txt):
//
//   reshard_mpi_test save ROOT TP PP DP   save the synthetic GPT state (step 1)
//   reshard_mpi_test load ROOT TP PP DP   load it in this layout, check every byte
//   reshard_mpi_test async ROOT           PutAsync, then the "training" goes on: the
//                                         tensors change and the application runs its
//                                         own collectives on MPI_COMM_WORLD while the
//                                         save commits in the background; then load
//                                         and check the saved (original) values
//   reshard_mpi_test errors ROOT          bad input and an injected I/O failure on
//                                         one rank: every rank must get the same
//                                         error, nothing is committed, step 1 loads
//
// Exit code 0 iff the check passed on every rank.

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "dcp/dcp.h"
#include "engine/base/fault_injection.h"
#include "tests/mpi/mpi_checks.h"
#include "tools/synthetic/gpt_state.h"

namespace {

using dcp::testing::SameErrorEverywhere;
using dcp::testing::Verdict;

int SaveOrLoad(dcp::Communicator* comm, const std::string& root, bool save, const dcp::synthetic::Layout& layout) {
  if (comm->size() != layout.world()) {
    std::fprintf(stderr, "layout %s needs %d ranks\n", layout.ToString().c_str(), layout.world());
    return 2;
  }
  dcp::synthetic::GptState state(dcp::testing::SmallGptConfig(), layout, comm->rank(), save);
  dcp::StoreOptions so;
  so.read_only = !save;
  auto store = dcp::Store::Open(root, comm, so);
  if (!store.ok()) return Verdict(comm, false, store.status().ToString());
  if (save) {
    const dcp::Status s = (*store)->Put(1, state.state_dict());
    return Verdict(comm, s.ok(), s.ToString());
  }
  dcp::StateDict& sd = state.state_dict();
  auto md = (*store)->Metadata(1);
  if (!md.ok()) return Verdict(comm, false, md.status().ToString());
  state.RequestSavedObjectCells(*md);
  auto loaded = (*store)->Get(1, &sd);
  if (!loaded.ok()) return Verdict(comm, false, loaded.status().ToString());
  const std::string mismatch = state.Verify();
  return Verdict(comm, mismatch.empty(), mismatch);
}

int Errors(dcp::Communicator* comm, const std::string& root) {
  const dcp::synthetic::Layout layout{2, comm->size() / 2, 1};
  const int rank = comm->rank();
  bool ok = true;
  {
    dcp::synthetic::GptState state(dcp::testing::SmallGptConfig(), layout, rank, true);
    auto store = dcp::Store::Open(root, comm);
    if (!store.ok()) return Verdict(comm, false, store.status().ToString());
    ok = ok && (*store)->Put(1, state.state_dict()).ok();

    // Bad input on the last rank only: a different global shape for one key.
    dcp::synthetic::GptState bad(dcp::testing::SmallGptConfig(), layout, rank, true);
    if (rank == comm->size() - 1) {
      dcp::StateDict& model = bad.state_dict().dict(bad.state_dict().Find("model"));
      model.tensor(0).global_shape[1] += 1;
    }
    ok = ok && SameErrorEverywhere(comm, (*store)->Put(2, bad.state_dict()), {"declares"});

    // An injected I/O failure on rank 1 just before its records are ingested.
    dcp::base::ArmFaultPoint("put.before_ingest", 1);
    ok = ok && SameErrorEverywhere(comm, (*store)->Put(3, state.state_dict()),
                                   {"put of step 3: rank 1: injected fault at 'put.before_ingest'"});
    dcp::base::DisarmAllFaultPoints();

    // A failure while rank 0 publishes: nothing becomes visible.
    dcp::base::ArmFaultPoint("put.before_publish", 0);
    ok = ok && SameErrorEverywhere(comm, (*store)->Put(4, state.state_dict()), {"injected fault at 'put.before_publish'"});
    dcp::base::DisarmAllFaultPoints();

    // A request for a tensor that does not exist, on one rank.
    dcp::synthetic::GptState req(dcp::testing::SmallGptConfig(), layout, rank, false);
    if (rank == 1) {
      dcp::StateDict& model = req.state_dict().dict(req.state_dict().Find("model"));
      model.tensor(0).key = "no.such.tensor";
    }
    ok = ok && SameErrorEverywhere(comm, (*store)->Get(1, &req.state_dict()).status(),
                                   {"tensor 'no.such.tensor' is not in step 1"});
    auto steps = (*store)->Steps();
    ok = ok && steps.ok() && *steps == std::vector<uint64_t>{1};
  }
  ok = ok && Verdict(comm, ok, "error agreement") == 0;
  // Step 1 is intact.
  return ok ? SaveOrLoad(comm, root, false, layout) : Verdict(comm, false, "error agreement");
}

int Async(dcp::Communicator* comm, const std::string& root) {
  const dcp::synthetic::Layout layout{2, comm->size() / 2, 1};
  dcp::synthetic::GptState state(dcp::testing::SmallGptConfig(), layout, comm->rank(), true);
  auto store = dcp::Store::Open(root, comm);
  if (!store.ok()) return Verdict(comm, false, store.status().ToString());
  dcp::Status s = (*store)->PutAsync(1, state.state_dict());
  if (!s.ok()) return Verdict(comm, false, s.ToString());
  // The next training step: new values, and the application's own collectives.
  state.Perturb(12345);
  double sum = 0;
  for (int i = 0; i < 200; ++i) {
    double one = 1.0, total = 0;
    MPI_Allreduce(&one, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    sum += total;
  }
  const bool collectives_ok = sum == 200.0 * comm->size();
  s = (*store)->WaitForPut();
  if (Verdict(comm, s.ok() && collectives_ok, s.ToString() + (collectives_ok ? "" : " (allreduce wrong)")) != 0) {
    return 1;
  }
  store->reset();
  return SaveOrLoad(comm, root, false, layout);  // checks the snapshot's values (seed 0)
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok() || argc < 3) {
    std::fprintf(stderr, "usage: reshard_mpi_test save|load|errors ROOT [TP PP DP]\n");
    return 2;
  }
  auto comm = dcp::NewMpiWorldCommunicator();
  if (!comm.ok()) return 1;
  const std::string mode = argv[1], root = argv[2];
  if (mode == "errors") return Errors(comm->get(), root);
  if (mode == "async") return Async(comm->get(), root);
  if (argc < 6) return 2;
  const dcp::synthetic::Layout layout{std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5])};
  return SaveOrLoad(comm->get(), root, mode == "save", layout);
}
