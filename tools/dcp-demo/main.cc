// Copyright (c) dcp authors.
//
// dcp-demo: a synthetic GPT-like training state saved from one parallel
// layout and loaded into another, every byte checked.
//
//   mpirun -np 4 dcp-demo save --root /tmp/ckpt --tp 2 --pp 2 --step 100
//   mpirun -np 2 dcp-demo load --root /tmp/ckpt --tp 1 --pp 2 --step 100
//
// The world size must equal tp * pp * dp. Exit code 0 on success, 1 on any
// error (the same on every rank), 2 on bad usage.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "dcp/dcp.h"
#include "engine/inspect/inspect.h"
#include "engine/inspect/render.h"
#include "tools/synthetic/gpt_state.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sums a value over ranks through the communicator (bytes-level allgather).
uint64_t Sum(dcp::Communicator* comm, uint64_t v) {
  std::vector<std::string> all;
  if (!comm->AllGather(std::string(reinterpret_cast<const char*>(&v), sizeof(v)), &all).ok()) return 0;
  uint64_t total = 0;
  for (const auto& a : all) {
    uint64_t x = 0;
    std::memcpy(&x, a.data(), sizeof(x));
    total += x;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) {
    std::fprintf(stderr, "dcp-demo: %s\n", mpi.status().ToString().c_str());
    return 1;
  }
  CLI::App app{"dcp-demo: save a synthetic GPT-like state in one layout, load it in another"};
  std::string root;
  dcp::synthetic::Layout layout;
  dcp::synthetic::GptConfig config;
  uint64_t step = 100;
  for (auto* sub : {app.add_subcommand("save", "save the state (collective)"),
                    app.add_subcommand("load", "load and verify the state (collective)")}) {
    sub->add_option("--root", root, "store root (on a filesystem every rank sees)")->required();
    sub->add_option("--tp", layout.tp, "tensor-parallel size");
    sub->add_option("--pp", layout.pp, "pipeline-parallel size");
    sub->add_option("--dp", layout.dp, "data-parallel size");
    sub->add_option("--step", step, "step number");
    sub->add_option("--hidden", config.hidden, "hidden size");
    sub->add_option("--layers", config.layers, "number of layers");
    sub->add_option("--vocab", config.vocab, "padded vocabulary size");
    sub->add_option("--ffn", config.ffn, "MLP hidden size");
  }
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const bool saving = app.got_subcommand("save");

  auto comm_or = dcp::NewMpiWorldCommunicator();
  if (!comm_or.ok()) {
    std::fprintf(stderr, "dcp-demo: %s\n", comm_or.status().ToString().c_str());
    return 1;
  }
  dcp::Communicator* comm = comm_or->get();
  const int rank = comm->rank();
  auto say = [&](const std::string& s) {
    if (rank == 0) std::fputs(s.c_str(), stdout);
    std::fflush(stdout);
  };
  if (comm->size() != layout.world()) {
    say(fmt::format("dcp-demo: {} needs {} ranks, got {}\n", layout.ToString(), layout.world(), comm->size()));
    return 2;
  }

  dcp::synthetic::GptState state(config, layout, rank, /*fill=*/saving);
  dcp::StoreOptions so;
  so.read_only = !saving;
  auto store = dcp::Store::Open(root, comm, so);
  if (!store.ok()) {
    say("dcp-demo: " + store.status().ToString() + "\n");
    return 1;
  }

  const auto t0 = std::chrono::steady_clock::now();
  if (saving) {
    dcp::StateDict& sd = state.state_dict();
    sd.value(sd.Find("iteration")) = dcp::Value(static_cast<int64_t>(step));
    dcp::SaveOptions opts;
    opts.overwrite = true;
    dcp::SaveReport report;
    const dcp::Status s = (*store)->Put(step, state.state_dict(), opts, &report);
    const double secs = Seconds(t0);
    if (!s.ok()) {
      say("dcp-demo: save failed: " + s.ToString() + "\n");
      return 1;
    }
    const uint64_t raw = Sum(comm, report.raw_bytes_written);
    const uint64_t stored = Sum(comm, report.stored_bytes_written);
    const uint64_t chunks = Sum(comm, report.chunks_written);
    const uint64_t held = Sum(comm, state.local_bytes());
    say(fmt::format("saved step {} from {} ranks ({}): {} shards held ({} incl. replicas), {} written as {} chunk "
                    "records ({} stored) in {:.2f} s ({:.0f} MB/s)\n",
                    step, comm->size(), layout.ToString(), state.num_shards() * comm->size(),
                    dcp::inspect::HumanBytes(held), dcp::inspect::HumanBytes(raw), chunks,
                    dcp::inspect::HumanBytes(stored), secs, raw / secs / 1e6));
    return 0;
  }

  // Objects are not reshardable: ask for the saved RNG cell this rank maps to.
  auto md = (*store)->Metadata(step);
  if (!md.ok()) {
    say("dcp-demo: " + md.status().ToString() + "\n");
    return 1;
  }
  state.RequestSavedObjectCells(*md);
  dcp::StateDict& sd = state.state_dict();
  auto loaded = (*store)->Get(step, &sd);
  const double secs = Seconds(t0);
  if (!loaded.ok()) {
    say("dcp-demo: load failed: " + loaded.status().ToString() + "\n");
    return 1;
  }
  const std::string mismatch = state.Verify();
  const dcp::Status verified =
      mismatch.empty() ? dcp::Status::OK() : dcp::Status::DataLoss(mismatch);
  std::vector<std::string> outcomes;
  (void)comm->AllGather(verified.ToString(), &outcomes);
  int bad = 0;
  for (const auto& o : outcomes) bad += o != "OK";
  const uint64_t bytes = Sum(comm, state.local_bytes());
  const dcp::Value* it = loaded->common_state.Find("iteration");
  say(fmt::format("loaded step {} into {} ranks ({}): {} in {:.2f} s ({:.0f} MB/s); iteration={}; "
                  "verified every byte on every rank: {}\n",
                  step, comm->size(), layout.ToString(), dcp::inspect::HumanBytes(bytes), secs, bytes / secs / 1e6,
                  it ? std::to_string(it->as_int()) : "?", bad == 0 ? "OK" : "FAILED"));
  if (bad != 0) {
    for (const auto& o : outcomes) {
      if (o != "OK") say("  " + o + "\n");
    }
    return 1;
  }
  if (rank == 0) {
    auto reader = dcp::inspect::StoreReader::Open(root);
    auto steps = reader.ok() ? dcp::inspect::ListSteps(reader->get()) : reader.status();
    if (steps.ok()) {
      std::fputs(("\n$ dcp-inspect " + root + "\n").c_str(), stdout);
      std::fputs(dcp::inspect::RenderStepsTable(*steps).c_str(), stdout);
    }
  }
  return 0;
}
