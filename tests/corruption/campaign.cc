// Copyright (c) dcp authors.
//
// The corruption campaign: damage a saved store the way disks, people and
// hostile users do, and check what every dcp operation makes of it.
//
//   corruption_campaign fixture ROOT            builds the store every trial starts from
//   corruption_campaign probe ROOT REPORT       what a reader, a writer and garbage
//                                               collection make of a (damaged) store
//   corruption_campaign run [--trials N] [--seed S] [--work DIR] [--timeout-s T]
//                                               N trials: copy the fixture, damage one
//                                               file (or several), probe it in a child
//                                               process, classify the outcome
//   corruption_campaign diskfull [--levels N]   the fixture on a small tmpfs (root),
//                                               probed with the disk filled at N levels
//
// The fixture: two ranks (in-process threads), three steps — a 64x1024 f32
// tensor in 16 KiB chunks whose row blocks change between steps, 24 small
// tensors sharing table blocks, an object per rank, common state — the second
// and third steps incremental, so they reference records of the first.
//
// Faults, over every kind of file under the root (dcp's manifests, marker and
// LATEST; each rank store's table files, RocksDB MANIFEST, CURRENT, WAL,
// OPTIONS, IDENTITY): one flipped bit, one byte set at random, a zeroed 4 KiB
// range, a truncation, a deletion; and whole-store faults (CURRENT and WAL
// missing together, a rank store or ranks/ deleted, one step's table file
// deleted).
//
// The probe, in a fresh process: loads every committed step and compares each
// byte (pre); puts a fourth, incremental step (put) and loads it (new); loads
// the first three again (post); collects garbage and loads them once more
// (gc). Each trial is classified by the worst that happened:
//   crash      the probe died of a signal
//   hang       it did not finish within the timeout
//   wrong      a load returned OK with wrong bytes
//   destroyed  a step that loaded before the put or the collection did not after
//   unloadable a put returned OK for a step that then failed to load
//   refused    the put failed: the damaged store did not stay writable
//   detected   some load returned an error naming the damage (none of the above)
//   harmless   everything loaded and the put succeeded
// The run prints a table by file kind and fault and exits 1 if any trial was
// crash, hang, wrong, destroyed, unloadable or refused.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dcp/dcp.h"
#include "engine/store/key_layout.h"
#include "tests/testing/rank_runner.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

constexpr int kRanks = 2;
constexpr int64_t kRows = 64, kCols = 1024, kBlock = 4;  // 16 KiB chunks
constexpr int kSmall = 24;                               // small tensors of 96 floats
constexpr int64_t kSmallLen = 96;
constexpr uint64_t kFixtureSteps = 3;

int64_t Version(int64_t block, int64_t step) {
  const int64_t v = step - ((block + step) % 3);
  return v < 1 ? 1 : v;
}

float BigValue(int64_t row, int64_t col, int64_t step) {
  return static_cast<float>((row / kBlock) * 1000 + Version(row / kBlock, step)) + static_cast<float>(col) * 1e-3f;
}

// Small tensor i changes at every step when i is odd, never when even.
float SmallValue(int i, int64_t j, int64_t step) {
  return static_cast<float>(i * 10000 + j) + (i % 2 == 1 ? static_cast<float>(step) * 0.5f : 0.f);
}

std::string ObjectBytes(int rank, int64_t step) { return "rng-" + std::to_string(rank) + "-" + std::to_string(step); }

void Check(const dcp::Status& s, const std::string& what) {
  if (!s.ok()) throw std::runtime_error(what + ": " + s.ToString());
}

// Rank `rank`'s state at `step`: half of the big tensor's rows, the small
// tensors split between the ranks, its object, the common state.
struct RankState {
  std::vector<float> rows = std::vector<float>(kRows / kRanks * kCols);
  std::vector<std::vector<float>> small;
  dcp::StateDict sd;

  RankState(int rank, int64_t step) {
    const int64_t first = rank * kRows / kRanks;
    for (int64_t r = 0; r < kRows / kRanks; ++r) {
      for (int64_t c = 0; c < kCols; ++c) rows[r * kCols + c] = BigValue(first + r, c, step);
    }
    auto big = dcp::ShardedTensorFromRankOffsets(
        "w", dcp::TensorView(rows.data(), dcp::DType::kFloat32, {kRows / kRanks, kCols}), {{0, rank, kRanks}});
    Check(big.status(), "big tensor");
    sd.Add("w", *big);
    for (int i = rank; i < kSmall; i += kRanks) {
      small.emplace_back(kSmallLen);
      for (int64_t j = 0; j < kSmallLen; ++j) small.back()[j] = SmallValue(i, j, step);
    }
    size_t k = 0;
    for (int i = rank; i < kSmall; i += kRanks, ++k) {
      sd.Child("small").Add(std::to_string(i), dcp::ShardedTensor::Whole(
                                                   "small." + std::to_string(i),
                                                   dcp::TensorView(small[k].data(), dcp::DType::kFloat32, {kSmallLen})));
    }
    sd.Add("rng", dcp::ShardedObject{"rng", ObjectBytes(rank, step), {kRanks}, {rank}, {}});
    sd.Add("iteration", dcp::Value(step));
    sd.Add("config", dcp::Value(std::string("campaign")));
  }
};

dcp::SaveOptions Options() {
  dcp::SaveOptions o;
  o.chunk_bytes = kBlock * kCols * 4;
  return o;
}

void SaveSteps(const std::string& root, uint64_t first, uint64_t last) {
  dcp::testing::RunRanks(kRanks, [&](int rank, dcp::Communicator* comm) {
    auto store = dcp::Store::Open(root, comm);
    Check(store.status(), "open");
    for (uint64_t step = first; step <= last; ++step) {
      RankState state(rank, static_cast<int64_t>(step));
      Check((*store)->Put(step, state.sd, Options()), "put " + std::to_string(step));
    }
  });
}

// "ok", "wrong: ..." or "error: <status>".
std::string VerifyStep(dcp::Store* store, uint64_t step) {
  std::vector<float> big(kRows * kCols);
  std::vector<std::vector<float>> small(kSmall, std::vector<float>(kSmallLen));
  dcp::StateDict req;
  req.Add("w", dcp::ShardedTensor::Whole("w", dcp::TensorView(big.data(), dcp::DType::kFloat32, {kRows, kCols})));
  for (int i = 0; i < kSmall; ++i) {
    req.Add("s" + std::to_string(i),
            dcp::ShardedTensor::Whole("small." + std::to_string(i),
                                      dcp::TensorView(small[i].data(), dcp::DType::kFloat32, {kSmallLen})));
  }
  for (int r = 0; r < kRanks; ++r) req.Add("rng" + std::to_string(r), dcp::ShardedObject{"rng", "", {kRanks}, {r}, {}});
  auto loaded = store->Get(step, &req);
  if (!loaded.ok()) return "error: " + loaded.status().ToString();
  const int64_t s = static_cast<int64_t>(step);
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      if (big[r * kCols + c] != BigValue(r, c, s)) return "wrong: w[" + std::to_string(r) + "," + std::to_string(c) + "]";
    }
  }
  for (int i = 0; i < kSmall; ++i) {
    for (int64_t j = 0; j < kSmallLen; ++j) {
      if (small[i][j] != SmallValue(i, j, s)) return "wrong: small." + std::to_string(i);
    }
  }
  for (int r = 0; r < kRanks; ++r) {
    if (req.object(req.Find("rng" + std::to_string(r))).data != ObjectBytes(r, s)) return "wrong: object of rank " + std::to_string(r);
  }
  const dcp::Value* it = loaded->common_state.Find("iteration");
  if (it == nullptr || it->kind() != dcp::Value::Kind::kInt || it->as_int() != s) return "wrong: common state";
  return "ok";
}

// Verifies steps 1..last with a fresh read-only store.
std::vector<std::string> VerifyAll(const std::string& root, uint64_t last) {
  std::vector<std::string> out;
  dcp::StoreOptions ro;
  ro.read_only = true;
  auto store = dcp::Store::Open(root, nullptr, ro);
  for (uint64_t s = 1; s <= last; ++s) {
    out.push_back(store.ok() ? VerifyStep(store->get(), s) : "error: open: " + store.status().ToString());
  }
  return out;
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Table files under ranks/ (in any subdirectory: a repair may move files
// aside or ingest them again under another name), by rank store and content.
std::multiset<std::pair<std::string, size_t>> TableFiles(const std::string& root) {
  std::multiset<std::pair<std::string, size_t>> out;
  const std::string ranks = dcp::storage::RanksDir(root);
  if (!fs::exists(ranks)) return out;
  for (const auto& e : fs::recursive_directory_iterator(ranks)) {
    if (e.is_regular_file() && e.path().extension() == ".sst") {
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      out.emplace(fs::relative(e.path(), ranks).begin()->string(), std::hash<std::string>()(bytes.str()));
    }
  }
  return out;
}

int Probe(const std::string& root, const std::string& report_path) {
  std::ofstream report(report_path);
  auto emit = [&](const std::string& phase, uint64_t step, const std::string& outcome) {
    report << phase << ' ' << step << ' ' << OneLine(outcome) << '\n';
    report.flush();
  };
  const std::vector<std::string> pre = VerifyAll(root, kFixtureSteps);
  for (uint64_t s = 1; s <= kFixtureSteps; ++s) emit("pre", s, pre[s - 1]);

  // A writer comes back: opens the store and puts the next step. It must not
  // delete any table file that was there (what it cannot use, it sets aside).
  uint64_t next = kFixtureSteps + 1;
  {
    auto store = dcp::Store::Open(root, nullptr, dcp::StoreOptions{.create_if_missing = false, .read_only = true});
    if (store.ok()) {
      auto latest = (*store)->LatestStep();
      if (latest.ok() && latest->has_value()) next = std::max(next, **latest + 1);
    }
  }
  const auto tables_before = TableFiles(root);
  std::vector<dcp::Status> put(kRanks);
  dcp::testing::RunRanks(kRanks, [&](int rank, dcp::Communicator* comm) {
    auto store = dcp::Store::Open(root, comm, dcp::StoreOptions{.create_if_missing = false});
    if (!store.ok()) {
      put[rank] = store.status().Annotate("open");
      return;
    }
    RankState state(rank, static_cast<int64_t>(next));
    put[rank] = (*store)->Put(next, state.sd, Options());
  });
  emit("put", 0, put[0].ok() ? "ok" : "error: " + put[0].ToString());
  const auto tables_after = TableFiles(root);
  std::string gone;
  for (const auto& file : tables_before) {
    if (tables_after.count(file) < tables_before.count(file)) gone += " " + file.first;
  }
  emit("tables", 0, gone.empty() ? "ok" : "destroyed: the writer deleted a table file of" + gone);
  if (put[0].ok()) emit("new", 0, VerifyAll(root, next).back());
  const std::vector<std::string> post = VerifyAll(root, kFixtureSteps);
  for (uint64_t s = 1; s <= kFixtureSteps; ++s) emit("post", s, post[s - 1]);

  std::vector<dcp::Status> gc(kRanks);
  dcp::testing::RunRanks(kRanks, [&](int rank, dcp::Communicator* comm) {
    auto store = dcp::Store::Open(root, comm, dcp::StoreOptions{.create_if_missing = false});
    if (!store.ok()) {
      gc[rank] = store.status().Annotate("open");
      return;
    }
    dcp::GcOptions eager;
    eager.compact_dead_fraction = 0;
    gc[rank] = (*store)->CollectGarbage(nullptr, eager);
  });
  emit("gc", 0, gc[0].ok() ? "ok" : "error: " + gc[0].ToString());
  const std::vector<std::string> after_gc = VerifyAll(root, kFixtureSteps);
  for (uint64_t s = 1; s <= kFixtureSteps; ++s) emit("aftergc", s, after_gc[s - 1]);
  report << "done\n";
  return 0;
}

// ---------------------------------------------------------------- the run

struct Fault {
  std::string kind;   // file kind
  std::string fault;  // what was done
};

// The kind of a file under the root, by its path relative to it.
std::string KindOf(const std::string& rel) {
  const std::string name = fs::path(rel).filename().string();
  if (rel.rfind("steps/", 0) == 0) return "dcp manifest";
  if (name == "DCP_STORE") return "dcp marker";
  if (name == "LATEST") return "dcp LATEST";
  if (name == "LOCK") return "lock";
  if (rel.rfind("ranks/", 0) == 0) {
    if (name.size() > 4 && name.substr(name.size() - 4) == ".sst") return "table file (.sst)";
    if (name.rfind("MANIFEST-", 0) == 0) return "rocksdb MANIFEST";
    if (name == "CURRENT") return "rocksdb CURRENT";
    if (name.size() > 4 && name.substr(name.size() - 4) == ".log") return "rocksdb WAL";
    if (name.rfind("OPTIONS-", 0) == 0) return "rocksdb OPTIONS";
    if (name == "IDENTITY") return "rocksdb IDENTITY";
    if (name.rfind("LOG", 0) == 0) return "rocksdb info log";
  }
  return "other";
}

std::vector<std::string> FilesUnder(const std::string& root) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), root).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Damages the copy at `root` and says what was done.
Fault Damage(const std::string& root, std::mt19937_64& rng) {
  std::vector<std::string> files = FilesUnder(root);
  // Weight the kinds evenly rather than by file count.
  std::map<std::string, std::vector<std::string>> by_kind;
  for (const auto& f : files) {
    const std::string k = KindOf(f);
    if (k != "lock" && k != "rocksdb info log") by_kind[k].push_back(f);
  }
  std::vector<std::string> kinds;
  for (const auto& [k, v] : by_kind) kinds.push_back(k);
  kinds.push_back("whole store");
  const std::string kind = kinds[rng() % kinds.size()];
  if (kind == "whole store") {
    const std::string rank_dir = dcp::storage::RankStorePath(root, static_cast<uint32_t>(rng() % kRanks));
    switch (rng() % 4) {
      case 0:
        for (const auto& e : fs::directory_iterator(rank_dir)) {
          const std::string n = e.path().filename().string();
          if (n == "CURRENT" || (n.size() > 4 && n.substr(n.size() - 4) == ".log")) fs::remove(e.path());
        }
        return {kind, "CURRENT and WAL deleted"};
      case 1:
        fs::remove_all(rank_dir);
        return {kind, "one rank store deleted"};
      case 2:
        fs::remove_all(dcp::storage::RanksDir(root));
        return {kind, "ranks/ deleted"};
      default: {
        // The oldest table file of a rank store: the first step's records.
        std::vector<std::string> ssts;
        for (const auto& e : fs::directory_iterator(rank_dir)) {
          if (e.path().extension() == ".sst") ssts.push_back(e.path().string());
        }
        std::sort(ssts.begin(), ssts.end());
        if (!ssts.empty()) fs::remove(ssts.front());
        return {kind, "oldest table file deleted"};
      }
    }
  }
  const auto& candidates = by_kind[kind];
  const std::string path = root + "/" + candidates[rng() % candidates.size()];
  std::string bytes = ReadAll(path);
  const int what = static_cast<int>(rng() % 5);
  if (what == 4 || bytes.empty()) {
    fs::remove(path);
    return {kind, "deleted"};
  }
  const size_t at = rng() % bytes.size();
  switch (what) {
    case 0:
      bytes[at] = static_cast<char>(bytes[at] ^ (1u << (rng() % 8)));
      WriteAll(path, bytes);
      return {kind, "bit flipped"};
    case 1: {
      char c;
      do c = static_cast<char>(rng()); while (c == bytes[at]);
      bytes[at] = c;
      WriteAll(path, bytes);
      return {kind, "byte set"};
    }
    case 2:
      std::fill(bytes.begin() + at, bytes.begin() + std::min(bytes.size(), at + 4096), '\0');
      WriteAll(path, bytes);
      return {kind, "4 KiB zeroed"};
    default:
      bytes.resize(at);
      WriteAll(path, bytes);
      return {kind, "truncated"};
  }
}

// Runs argv with stdout and stderr to `log`; kills it after `timeout_s`.
// Returns "exit N", "signal N" or "timeout".
std::string RunWithTimeout(const std::vector<std::string>& argv, const std::string& log, int timeout_s) {
  std::vector<std::string> a = argv;
  std::vector<char*> args;
  for (auto& s : a) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "timeout";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "exit " + std::to_string(WEXITSTATUS(status));
}

const std::vector<std::string> kClasses = {"crash",   "hang",     "wrong",    "destroyed",
                                           "unloadable", "refused", "detected", "harmless"};

// The class of a trial from the probe's exit and report, with a one-line why.
std::pair<std::string, std::string> Classify(const std::string& ended, const std::string& report_path) {
  if (ended == "timeout") return {"hang", "no answer within the timeout"};
  if (ended.rfind("signal", 0) == 0) return {"crash", ended};
  std::ifstream in(report_path);
  std::map<std::string, std::map<uint64_t, std::string>> phases;
  std::string line;
  bool done = false;
  while (std::getline(in, line)) {
    if (line == "done") {
      done = true;
      continue;
    }
    std::istringstream ls(line);
    std::string phase;
    uint64_t step = 0;
    ls >> phase >> step;
    std::string rest;
    std::getline(ls, rest);
    if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    phases[phase][step] = rest;
  }
  if (!done) return {"crash", "probe ended early (" + ended + ")"};
  for (const auto& [phase, steps] : phases) {
    for (const auto& [step, outcome] : steps) {
      if (outcome.rfind("wrong", 0) == 0) return {"wrong", phase + " step " + std::to_string(step) + ": " + outcome};
    }
  }
  if (phases["tables"][0] != "ok") return {"destroyed", phases["tables"][0]};
  for (const char* later : {"post", "aftergc"}) {
    for (const auto& [step, outcome] : phases["pre"]) {
      if (outcome == "ok" && phases[later][step] != "ok") {
        return {"destroyed", std::string(later) + " step " + std::to_string(step) + ": " + phases[later][step]};
      }
    }
  }
  if (phases["put"][0] == "ok" && phases["new"][0] != "ok") {
    return {"unloadable", "put ok, then: " + phases["new"][0]};
  }
  // A damaged store stays writable. One refusal is by design: a marker that
  // a flip turned into another format version cannot be told from a store
  // of a newer format, which this build must not write.
  const std::string& put = phases["put"][0];
  if (put != "ok" && put.find("; this build reads version") == std::string::npos) return {"refused", "put: " + put};
  for (const auto& [phase, steps] : phases) {
    for (const auto& [step, outcome] : steps) {
      if (outcome != "ok") return {"detected", phase + " " + std::to_string(step) + ": " + outcome};
    }
  }
  return {"harmless", ""};
}

int Run(const std::string& self, int trials, uint64_t seed, const std::string& work, int timeout_s, bool verbose) {
  fs::remove_all(work);
  fs::create_directories(work);
  const std::string fixture = work + "/fixture";
  const std::string built = RunWithTimeout({self, "fixture", fixture}, work + "/fixture.log", 120);
  if (built != "exit 0") {
    std::fprintf(stderr, "fixture failed (%s):\n%s\n", built.c_str(), ReadAll(work + "/fixture.log").c_str());
    return 2;
  }
  std::mt19937_64 rng(seed);
  std::map<std::string, std::map<std::string, std::map<std::string, int>>> table;  // kind -> fault -> class -> n
  std::map<std::string, int> totals;
  std::vector<std::string> bad;
  for (int t = 0; t < trials; ++t) {
    const std::string root = work + "/trial";
    fs::remove_all(root);
    fs::copy(fixture, root, fs::copy_options::recursive);
    const Fault f = Damage(root, rng);
    const std::string report = work + "/report";
    fs::remove(report);
    const std::string ended = RunWithTimeout({self, "probe", root, report}, work + "/probe.log", timeout_s);
    const auto [cls, why] = Classify(ended, report);
    table[f.kind][f.fault][cls]++;
    totals[cls]++;
    const bool failed = cls != "detected" && cls != "harmless";
    if (failed || verbose) {
      std::string line = "trial " + std::to_string(t) + " [" + f.kind + ", " + f.fault + "]: " + cls +
                          (why.empty() ? "" : " — " + why);
      std::printf("%s\n", line.c_str());
      if (failed) {
        bad.push_back(line);
        const std::string keep = work + "/failed-" + std::to_string(t);
        fs::rename(root, keep);
        fs::copy_file(work + "/probe.log", keep + ".log", fs::copy_options::overwrite_existing);
      }
    }
  }
  std::printf("\n| file kind | fault | trials |");
  for (const auto& c : kClasses) std::printf(" %s |", c.c_str());
  std::printf("\n|---|---|---|");
  for (size_t i = 0; i < kClasses.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const auto& [kind, faults] : table) {
    for (const auto& [fault, classes] : faults) {
      int n = 0;
      for (const auto& [c, k] : classes) n += k;
      std::printf("| %s | %s | %d |", kind.c_str(), fault.c_str(), n);
      for (const auto& c : kClasses) {
        auto it = classes.find(c);
        std::printf(" %d |", it == classes.end() ? 0 : it->second);
      }
      std::printf("\n");
    }
  }
  std::printf("| all | all | %d |", trials);
  for (const auto& c : kClasses) std::printf(" %d |", totals[c]);
  std::printf("\n");
  if (!bad.empty()) {
    std::printf("\n%zu trials failed (stores kept under %s/failed-*)\n", bad.size(), work.c_str());
    return 1;
  }
  fs::remove_all(work);
  return 0;
}

}  // namespace

// ---------------------------------------------------------------- disk full

uint64_t BytesUnder(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// Fills the filesystem of `dir` until `leave` bytes are free.
void Fill(const std::string& dir, uint64_t leave) {
  struct statvfs v;
  if (::statvfs(dir.c_str(), &v) != 0) throw std::runtime_error("statvfs " + dir);
  const uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  if (avail <= leave) return;
  std::ofstream filler(dir + "/filler", std::ios::binary);
  const std::string block(4096, 'f');
  for (uint64_t n = 0; n + block.size() <= avail - leave; n += block.size()) filler.write(block.data(), block.size());
}

// The store on a small filesystem of its own (a tmpfs, mounted here: needs
// root), filled at `levels` points from nothing free to enough for a put.
// At each level a probe runs on the full disk (the put may fail; nothing
// may crash, hang, lose or corrupt data); then the filler is removed and a
// second probe must find every step loadable and the store writable.
// Returns 77 (ctest's skip code) where no tmpfs can be mounted.
int DiskFull(const std::string& self, int levels, const std::string& work, int timeout_s) {
  fs::remove_all(work);
  fs::create_directories(work + "/mnt");
  const std::string fixture = work + "/fixture";
  if (RunWithTimeout({self, "fixture", fixture}, work + "/fixture.log", 120) != "exit 0") {
    std::fprintf(stderr, "fixture failed:\n%s\n", ReadAll(work + "/fixture.log").c_str());
    return 2;
  }
  const std::string mnt = work + "/mnt";
  const uint64_t store_bytes = BytesUnder(fixture);
  const std::string size = "size=" + std::to_string(store_bytes * 3 + (4 << 20));
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, size.c_str()) != 0) {
    std::printf("skipped: cannot mount a tmpfs at %s (%s); the disk-full campaign needs root\n", mnt.c_str(),
                std::strerror(errno));
    fs::remove_all(work);
    return 77;
  }
  std::map<std::string, int> full_classes, freed_classes;
  std::vector<std::string> bad;
  std::printf("| free bytes | on the full disk | after freeing space |\n|---|---|---|\n");
  for (int level = 0; level < levels; ++level) {
    for (const auto& e : fs::directory_iterator(mnt)) fs::remove_all(e.path());
    const std::string root = mnt + "/store";
    fs::copy(fixture, root, fs::copy_options::recursive);
    const uint64_t leave = store_bytes * static_cast<uint64_t>(level) / static_cast<uint64_t>(std::max(1, levels - 1));
    Fill(mnt, leave);
    const std::string report = work + "/report";
    fs::remove(report);
    auto [full, full_why] = Classify(RunWithTimeout({self, "probe", root, report}, work + "/probe.log", timeout_s), report);
    if (full == "refused") full = "put failed (no space)";
    fs::remove(mnt + "/filler");
    fs::remove(report);
    const auto [freed, freed_why] =
        Classify(RunWithTimeout({self, "probe", root, report}, work + "/probe2.log", timeout_s), report);
    std::printf("| %llu | %s | %s |\n", static_cast<unsigned long long>(leave), full.c_str(), freed.c_str());
    full_classes[full]++;
    freed_classes[freed]++;
    const bool full_bad = full != "detected" && full != "harmless" && full != "put failed (no space)";
    const bool freed_bad = freed != "detected" && freed != "harmless";
    if (full_bad) bad.push_back("level " + std::to_string(level) + " full: " + full + " — " + full_why);
    if (freed_bad) bad.push_back("level " + std::to_string(level) + " freed: " + freed + " — " + freed_why);
  }
  ::umount(mnt.c_str());
  std::printf("\n%d fill levels; on the full disk:", levels);
  for (const auto& [c, n] : full_classes) std::printf(" %s %d;", c.c_str(), n);
  std::printf(" after freeing space:");
  for (const auto& [c, n] : freed_classes) std::printf(" %s %d;", c.c_str(), n);
  std::printf("\n");
  for (const auto& b : bad) std::printf("FAILED %s\n", b.c_str());
  if (!bad.empty()) return 1;
  fs::remove_all(work);
  return 0;
}

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "fixture" && argc == 3) {
      SaveSteps(argv[2], 1, kFixtureSteps);
      const auto verified = VerifyAll(argv[2], kFixtureSteps);
      for (const auto& v : verified) Check(v == "ok" ? dcp::Status::OK() : dcp::Status::Internal(v), "fixture");
      return 0;
    }
    if (mode == "probe" && argc == 4) return Probe(argv[2], argv[3]);
    if (mode == "diskfull") {
      int levels = 41, timeout_s = 60;
      std::string work = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/dcp-diskfull-" +
                         std::to_string(::getpid());
      for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--levels" && i + 1 < argc) levels = std::atoi(argv[++i]);
        else if (a == "--work" && i + 1 < argc) work = argv[++i];
        else if (a == "--timeout-s" && i + 1 < argc) timeout_s = std::atoi(argv[++i]);
        else throw std::runtime_error("unknown argument " + a);
      }
      if (levels < 2) throw std::runtime_error("--levels must be at least 2");
      return DiskFull(fs::canonical("/proc/self/exe").string(), levels, work, timeout_s);
    }
    if (mode == "run") {
      int trials = 40, timeout_s = 60;
      uint64_t seed = 1;
      std::string work = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/dcp-corruption-" +
                         std::to_string(::getpid());
      bool verbose = false;
      for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--trials" && i + 1 < argc) trials = std::atoi(argv[++i]);
        else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--work" && i + 1 < argc) work = argv[++i];
        else if (a == "--timeout-s" && i + 1 < argc) timeout_s = std::atoi(argv[++i]);
        else if (a == "--verbose") verbose = true;
        else throw std::runtime_error("unknown argument " + a);
      }
      if (trials < 1 || timeout_s < 1) throw std::runtime_error("--trials and --timeout-s must be positive");
      return Run(fs::canonical("/proc/self/exe").string(), trials, seed, work, timeout_s, verbose);
    }
    std::fprintf(stderr,
                 "usage: corruption_campaign fixture ROOT | probe ROOT REPORT |\n"
                 "       run [--trials N] [--seed S] [--work DIR] [--timeout-s T] [--verbose] |\n"
                 "       diskfull [--levels N] [--work DIR] [--timeout-s T]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corruption_campaign: %s\n", e.what());
    return 1;
  }
}
