// Copyright (c) dcp authors.
//
// Helpers shared by the benchmark programs that run under mpirun: reductions
// over ranks, a collective timer, failing every rank at once, and the
// command-line options of the synthetic GPT model.

#ifndef DCP_BENCH_BENCH_MPI_H_
#define DCP_BENCH_BENCH_MPI_H_

#include <mpi.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bench/bench_util.h"
#include "dcp/mpi.h"
#include "dcp/status.h"
#include "tools/synthetic/gpt_state.h"

namespace dcp::bench {

inline double MaxOverRanks(double v, MPI_Comm comm = MPI_COMM_WORLD) {
  double out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, comm);
  return out;
}

inline uint64_t SumOverRanks(uint64_t v, MPI_Comm comm = MPI_COMM_WORLD) {
  uint64_t out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_UINT64_T, MPI_SUM, comm);
  return out;
}

inline bool AllRanks(bool v, MPI_Comm comm = MPI_COMM_WORLD) {
  int in = v ? 1 : 0, out = 0;
  MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, comm);
  return out == 1;
}

// A barrier whose waiting ranks sleep instead of spinning. With more ranks
// than cores (these benchmarks oversubscribe 4 ranks on 2 cores), Open MPI's
// waiting ranks spin in sched_yield and take CPU from the ranks still working;
// when only part of the job works (a load by a sub-group) that would tax
// whichever side of a comparison needs more CPU. Polls every 50 us.
inline void SleepingBarrier(MPI_Comm comm) {
  MPI_Request request;
  MPI_Ibarrier(comm, &request);
  int done = 0;
  for (MPI_Test(&request, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&request, &done, MPI_STATUS_IGNORE)) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// Wall time of `fn` across the ranks of `comm`: barrier, run, barrier, max
// (ranks done early wait without spinning).
template <typename F>
double TimedOverRanks(MPI_Comm comm, F fn) {
  MPI_Barrier(comm);
  Timer t;
  fn();
  const double mine = t.Seconds();
  SleepingBarrier(comm);
  return MaxOverRanks(mine, comm);
}

// The start of a benchmark job: every rank's place in MPI_COMM_WORLD and a
// communicator over it, once the job is checked to have the ranks `layout`
// needs (else rank 0 names `program` and the count, and nullopt) and rank 0
// has emptied `root` (the others wait for it).
struct Job {
  int rank = 0;
  int world = 1;
  std::unique_ptr<Communicator> comm;
};

inline std::optional<Job> StartJob(const char* program, const synthetic::Layout& layout, const std::string& root) {
  Job job;
  MPI_Comm_rank(MPI_COMM_WORLD, &job.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &job.world);
  if (job.world != layout.world()) {
    if (job.rank == 0) {
      std::fprintf(stderr, "%s: layout %s needs %d ranks\n", program, layout.ToString().c_str(), layout.world());
    }
    return std::nullopt;
  }
  if (job.rank == 0) std::filesystem::remove_all(root);
  MPI_Barrier(MPI_COMM_WORLD);
  job.comm = std::move(NewMpiWorldCommunicator().value());
  return job;
}

// Prints the error and aborts the whole job.
inline void FailJob(const std::string& what) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
}

inline void CheckOrFail(const Status& s, const std::string& what) {
  if (!s.ok()) FailJob(what + ": " + s.ToString());
}

// --hidden/--layers/--ffn/--vocab for the synthetic model.
inline void AddModelOptions(CLI::App* app, synthetic::GptConfig* config) {
  app->add_option("--hidden", config->hidden, "hidden size");
  app->add_option("--layers", config->layers, "number of layers");
  app->add_option("--ffn", config->ffn, "MLP hidden size");
  app->add_option("--vocab", config->vocab, "padded vocabulary size");
}

}  // namespace dcp::bench

#endif  // DCP_BENCH_BENCH_MPI_H_
