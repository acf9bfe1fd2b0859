// Copyright (c) dcp authors.
//
// Helpers shared by the benchmark programs that run under mpirun: reductions
// over ranks, a collective timer, failing every rank at once, and the
// command-line options of the synthetic GPT model.

#ifndef DCP_BENCH_BENCH_MPI_H_
#define DCP_BENCH_BENCH_MPI_H_

#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/bench_util.h"
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

// Wall time of `fn` across the ranks of `comm`: barrier, run, barrier, max.
template <typename F>
double TimedOverRanks(MPI_Comm comm, F fn) {
  MPI_Barrier(comm);
  Timer t;
  fn();
  MPI_Barrier(comm);
  return MaxOverRanks(t.Seconds(), comm);
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
