// Copyright (c) dcp authors.
//
// legacy_bench: dcp against the legacy per-rank format, torch::save and
// torch::load (LibTorch's serialize archives), in the same run.
//
// 4 ranks (TP2xPP2) hold the GPT-like state. Legacy: every rank writes its
// local tensors to its own archive with torch::serialize::OutputArchive and
// fsyncs it; to load, it reads the archive back and copies each tensor into
// its destination (as load_state_dict does). dcp: Put of the same state (a
// full write, no incremental reuse) and Get into the same destinations. The
// page cache is dropped before each load. Both sides move the same bytes
// (each rank's local tensors; dcp stores the layernorms that TP ranks
// replicate once, a fraction of a percent less), fsync what they write, load
// into the same pre-touched destinations from a cold page cache, and use the
// same number of threads per rank. Times are the slowest rank's;
// reported as legacy / dcp (goal: >= 2 for both).
//
// The machine's limit in the same run: every rank writes its local tensors'
// bytes to a plain file with write() and fsync, and reads them back with
// 8 MiB preads after dropping the file's pages (bench_util.h RawWrite /
// RawRead). Both systems are also reported as a fraction of that limit, which
// bounds what either can reach: a legacy/dcp ratio of 2 needs the legacy
// format below half of the limit, or dcp to store fewer bytes.
//
//   mpirun -np 4 legacy_bench [--hidden 768 --layers 8 ...] [--reps 3] [--json FILE]

#include <fcntl.h>
#include <fmt/core.h>
#include <mpi.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_mpi.h"
#include "dcp/dcp.h"
#include "engine/base/thread_pool.h"
#include "engine/store/key_layout.h"
#include "tools/synthetic/gpt_state.h"

namespace {

at::ScalarType TorchType(dcp::DType d) {
  switch (d) {
    case dcp::DType::kBFloat16: return at::kBFloat16;
    case dcp::DType::kFloat16: return at::kHalf;
    case dcp::DType::kFloat32: return at::kFloat;
    case dcp::DType::kFloat64: return at::kDouble;
    case dcp::DType::kInt64: return at::kLong;
    case dcp::DType::kInt32: return at::kInt;
    default: return at::kByte;
  }
}

// Every tensor leaf of `sd` as a torch tensor over the same memory, named by
// its state-dict path.
void Collect(dcp::StateDict& sd, const std::string& prefix, std::vector<std::pair<std::string, at::Tensor>>* out) {
  for (size_t i = 0; i < sd.size(); ++i) {
    const std::string path = prefix.empty() ? sd.key(i) : prefix + "." + sd.key(i);
    if (sd.kind(i) == dcp::StateDict::Kind::kDict) {
      Collect(sd.dict(i), path, out);
    } else if (sd.kind(i) == dcp::StateDict::Kind::kTensor) {
      const dcp::TensorView& v = sd.tensor(i).data;
      std::vector<int64_t> shape(v.shape().begin(), v.shape().end());
      const auto options = torch::TensorOptions().dtype(TorchType(v.dtype()));
      void* data = const_cast<void*>(v.data());
      if (v.strides().empty()) {  // row-major
        out->emplace_back(path, torch::from_blob(data, shape, options));
      } else {
        std::vector<int64_t> strides(v.strides().begin(), v.strides().end());
        out->emplace_back(path, torch::from_blob(data, shape, strides, options));
      }
    }
  }
}

void FsyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) dcp::bench::FailJob("cannot fsync " + path);
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"legacy_bench: dcp vs torch::save / torch::load of each rank's local state"};
  std::string root = "/tmp/dcp-legacy-bench", json_path;
  dcp::synthetic::GptConfig config;
  config.hidden = 768;
  config.layers = 8;
  config.ffn = 3072;
  config.vocab = 16384;
  int reps = 3;
  app.add_option("--root", root);
  app.add_option("--json", json_path);
  app.add_option("--reps", reps);
  dcp::bench::AddModelOptions(&app, &config);
  CLI11_PARSE(app, argc, argv);
  // LibTorch gets the share of the node's cores that dcp's pools take by
  // default (at least 2), so neither side has more threads than the other.
  torch::set_num_threads(dcp::base::ResolveThreadCount(0));
  const dcp::synthetic::Layout layout{2, 2, 1};
  auto job = dcp::bench::StartJob("legacy_bench", layout, root);
  if (!job) return 2;
  const int rank = job->rank;
  auto& comm = job->comm;
  const std::string legacy_dir = root + "/legacy", store_root = root + "/dcp";
  std::filesystem::create_directories(legacy_dir);  // every rank (idempotent)
  dcp::synthetic::GptState state(config, layout, rank, true);
  dcp::synthetic::GptState dest(config, layout, rank, false);
  std::vector<std::pair<std::string, at::Tensor>> src_tensors, dest_tensors;
  Collect(state.state_dict(), "", &src_tensors);
  Collect(dest.state_dict(), "", &dest_tensors);
  const std::string archive = legacy_dir + "/rank-" + std::to_string(rank) + ".pt";
  const std::string raw_file = legacy_dir + "/rank-" + std::to_string(rank) + ".raw";
  const auto raw_pieces = state.LocalBuffers();
  std::vector<char> readback;
  auto store = std::move(dcp::Store::Open(store_root, comm.get()).value());
  dcp::SaveOptions full;
  full.incremental = false;

  double legacy_save = 1e30, legacy_load = 1e30, dcp_save = 1e30, dcp_load = 1e30;
  double raw_save = 1e30, raw_load = 1e30;
  bool verified = true;
  for (int r = 0; r < reps; ++r) {
    raw_save = std::min(raw_save, dcp::bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
      dcp::bench::RawWrite(raw_file, raw_pieces);
    }));
    legacy_save = std::min(legacy_save, dcp::bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
      torch::serialize::OutputArchive out;
      for (auto& [name, t] : src_tensors) out.write(name, t);
      out.save_to(archive);
      FsyncFile(archive);
    }));
    dcp_save = std::min(dcp_save, dcp::bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
      dcp::bench::CheckOrFail(store->Put(static_cast<uint64_t>(r + 1), state.state_dict(), full), "put");
    }));

    dcp::bench::DropPageCache(raw_file);
    raw_load = std::min(raw_load, dcp::bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
      dcp::bench::RawRead(raw_file, &readback);
    }));

    // dcp first: it also fills the RNG object, which the archives do not carry.
    dcp::bench::DropPageCache(dcp::storage::RankStorePath(store_root, static_cast<uint32_t>(rank)));
    dcp_load = std::min(dcp_load, dcp::bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
      dcp::bench::CheckOrFail(store->Get(static_cast<uint64_t>(r + 1), &dest.state_dict()).status(), "get");
    }));
    verified = dcp::bench::AllRanks(dest.Verify().empty()) && verified;
    for (auto& [name, t] : dest_tensors) t.zero_();

    dcp::bench::DropPageCache(archive);
    legacy_load = std::min(legacy_load, dcp::bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
      torch::serialize::InputArchive in;
      in.load_from(archive);
      for (auto& [name, t] : dest_tensors) {
        at::Tensor loaded;
        if (!in.try_read(name, loaded)) dcp::bench::FailJob("archive lacks " + name);
        t.copy_(loaded);
      }
    }));
    verified = dcp::bench::AllRanks(dest.Verify().empty()) && verified;
    for (auto& [name, t] : dest_tensors) t.zero_();
  }
  const uint64_t local = dcp::bench::SumOverRanks(state.local_bytes());
  const uint64_t archive_bytes = dcp::bench::SumOverRanks(std::filesystem::file_size(archive));
  if (rank == 0) {
    fmt::print("legacy_bench: 4 ranks {}, {:.3f} GB of local state ({:.3f} GB in torch archives), best of {}, "
               "loads verified: {}\n",
               layout.ToString(), local / 1e9, archive_bytes / 1e9, reps, verified ? "yes" : "NO");
    fmt::print("  save: torch::save + fsync {:.3f} s, dcp put {:.3f} s: dcp {:.2f}x faster (goal >= 2)\n",
               legacy_save, dcp_save, legacy_save / dcp_save);
    fmt::print("  load: torch::load + copy {:.3f} s, dcp get {:.3f} s: dcp {:.2f}x faster (goal >= 2)\n",
               legacy_load, dcp_load, legacy_load / dcp_load);
    fmt::print("  limit (same bytes, same ranks): write + fsync {:.3f} s, read {:.3f} s\n", raw_save, raw_load);
    fmt::print("  fraction of the limit (raw time / time): save torch {:.2f}, dcp {:.2f}; load torch {:.2f}, dcp {:.2f}\n",
               raw_save / legacy_save, raw_save / dcp_save, raw_load / legacy_load, raw_load / dcp_load);
    if (!json_path.empty()) {
      const std::vector<dcp::bench::Figure> figures = {
          {"save: torch::save+fsync time / dcp put time", legacy_save / dcp_save, ">= 2"},
          {"load: torch::load+copy time / dcp get time", legacy_load / dcp_load, ">= 2"},
          {"save: raw write+fsync time / torch::save+fsync time", raw_save / legacy_save, ""},
          {"save: raw write+fsync time / dcp put time", raw_save / dcp_save, ""},
          {"load: raw read time / torch::load+copy time", raw_load / legacy_load, ""},
          {"load: raw read time / dcp get time", raw_load / dcp_load, ""}};
      std::ofstream(json_path) << nlohmann::json({{"bench", "legacy"},
                                                  {"figures", dcp::bench::FiguresJson(figures)},
                                                  {"local_bytes", local},
                                                  {"archive_bytes", archive_bytes},
                                                  {"verified", verified},
                                                  {"torch_save_s", legacy_save},
                                                  {"dcp_put_s", dcp_save},
                                                  {"save_speedup", legacy_save / dcp_save},
                                                  {"torch_load_s", legacy_load},
                                                  {"dcp_get_s", dcp_load},
                                                  {"load_speedup", legacy_load / dcp_load},
                                                  {"raw_write_fsync_s", raw_save},
                                                  {"raw_read_s", raw_load}})
                                      .dump(2)
                               << "\n";
    }
  }
  store.reset();
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(root);
  return verified ? 0 : 1;
}
