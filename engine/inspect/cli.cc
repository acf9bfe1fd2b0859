// Copyright (c) dcp authors.
//
// The dcp-inspect command line: see, verify, compare and extract what a dcp
// store holds.
//
//   dcp-inspect ROOT [ls]                            committed steps
//   dcp-inspect ROOT show STEP [--keys GLOB]         tensors, objects, common state of a step
//   dcp-inspect ROOT layout STEP KEY                 which rank store holds which region
//   dcp-inspect ROOT verify [STEP]                   read and check every record
//   dcp-inspect ROOT diff STEP_A STEP_B              what changed between two steps
//   dcp-inspect ROOT dump STEP KEY [--region R] [--npy FILE [--raw]]
//   dcp-inspect ROOT export STEP --safetensors FILE [--keys GLOB] [--max-shard-size 5GB]
//   dcp-inspect ROOT common STEP                     the common state as JSON
//   dcp-inspect ROOT repair                          rebuild damaged rank stores' metadata, mark damaged steps
//
// Every subcommand takes --json and --help; STEP may be "latest". The command
// line of the tool (tools/dcp-inspect) and of `python3 -m dcp.inspect`.
// Exit code: 0 on success, 1 on an error (printed to stderr) or when verify
// finds a problem, 2 on bad usage.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstring>
#include <optional>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "dcp/options.h"
#include "engine/inspect/cli.h"
#include "engine/inspect/diff.h"
#include "engine/inspect/dump.h"
#include "engine/inspect/export.h"
#include "engine/inspect/gc.h"
#include "engine/inspect/inspect.h"
#include "engine/inspect/reader.h"
#include "engine/inspect/render.h"
#include "engine/inspect/repair.h"
#include "engine/inspect/verify.h"

namespace {

namespace inspect = dcp::inspect;

// Redraws a progress line on stderr at most ten times a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  ~Progress() {
    if (drawn_) std::fprintf(stderr, "\r%*s\r", static_cast<int>(width_), "");
  }
  void Update(uint64_t bytes, uint64_t bytes_total, uint64_t items, uint64_t items_total, const char* what) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool done = bytes >= bytes_total && items >= items_total;
    if (drawn_ && !done && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    const std::string line = inspect::ProgressLine(bytes, bytes_total, items, items_total, what,
                                                   std::chrono::duration<double>(now - start_).count());
    width_ = std::max(width_, line.size());
    std::fprintf(stderr, "\r%-*s", static_cast<int>(width_), line.c_str());
    std::fflush(stderr);
  }

 private:
  const bool enabled_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
  size_t width_ = 0;
};

int Fail(const dcp::Status& s) {
  std::fprintf(stderr, "dcp-inspect: %s\n", s.ToString().c_str());
  return s.IsInvalidArgument() ? 2 : 1;
}

int Emit(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  return 0;
}

struct Args {
  std::string root, step_a, step_b, key, keys, region, npy, safetensors, max_shard_size;
  bool json = false, exact = false, no_progress = false, raw = false;
  size_t count = 8;
  int threads = 0;
  double compact_dead_fraction = dcp::GcOptions().compact_dead_fraction;
  bool progress() const { return !no_progress && ::isatty(STDERR_FILENO); }
};

// Each subcommand: resolve the step arguments, call the library, render.
#define ASSIGN_OR_FAIL(lhs, expr) \
  auto lhs = (expr);              \
  if (!lhs.ok()) return Fail(lhs.status())

int RunLs(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(steps, inspect::ListSteps(r));
  Emit(a.json ? inspect::RenderStepsJson(*steps) : inspect::RenderStepsTable(*steps));
  for (const auto& s : *steps) {
    if (!s.problem.empty()) return 1;
  }
  return 0;
}

// Exit code 1 when what was shown carries a problem (an invalid manifest, a
// broken invariant, an undecodable common state), as ls and verify do.
int RunShow(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(step, inspect::ResolveStep(a.root, a.step_a));
  ASSIGN_OR_FAIL(d, inspect::ShowStep(r, *step, a.keys));
  const int rc = Emit(a.json ? inspect::RenderStepJson(*d) : inspect::RenderStepTable(*d));
  bool problem = !d->summary.problem.empty() || !d->common.problem.empty();
  for (const auto& t : d->tensors) problem = problem || !t.problem.empty();
  for (const auto& o : d->objects) problem = problem || !o.problem.empty();
  return rc != 0 ? rc : (problem ? 1 : 0);
}

int RunLayout(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(step, inspect::ResolveStep(a.root, a.step_a));
  ASSIGN_OR_FAIL(l, inspect::GetLayout(r, *step, a.key));
  const int rc = Emit(a.json ? inspect::RenderLayoutJson(*l) : inspect::RenderLayoutTable(*l));
  return rc != 0 ? rc : (l->coverage.ok() ? 0 : 1);
}

int RunVerify(inspect::StoreReader* r, const Args& a) {
  inspect::VerifyOptions o;
  if (!a.step_a.empty()) {
    ASSIGN_OR_FAIL(step, inspect::ResolveStep(a.root, a.step_a));
    o.step = *step;
  }
  o.threads = a.threads;
  dcp::Result<inspect::VerifyReport> v = dcp::Status::Internal("not run");
  {
    Progress bar(a.progress());
    o.progress = [&](const inspect::VerifyProgress& p) {
      bar.Update(p.bytes_done, p.bytes_total, p.records_done, p.records_total, "records");
    };
    v = inspect::Verify(r, o);
  }
  if (!v.ok()) return Fail(v.status());
  Emit(a.json ? inspect::RenderVerifyJson(*v) : inspect::RenderVerifyText(*v));
  return v->ok() ? 0 : 1;
}

int RunDiff(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(step_a, inspect::ResolveStep(a.root, a.step_a));
  ASSIGN_OR_FAIL(step_b, inspect::ResolveStep(a.root, a.step_b));
  inspect::DiffOptions o;
  o.keys_glob = a.keys;
  o.exact = a.exact;
  ASSIGN_OR_FAIL(d, inspect::Diff(r, *step_a, *step_b, o));
  return Emit(a.json ? inspect::RenderDiffJson(*d) : inspect::RenderDiffTable(*d));
}

int RunDump(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(step, inspect::ResolveStep(a.root, a.step_a));
  inspect::DumpOptions o;
  o.region = a.region;
  o.count = a.count;
  o.npy_path = a.npy;
  o.raw_bits = a.raw;
  ASSIGN_OR_FAIL(d, inspect::Dump(r, *step, a.key, o));
  return Emit(a.json ? inspect::RenderDumpJson(*d) : inspect::RenderDumpText(*d));
}

// "5GB", "500MB", "1GiB", "4096": bytes (Hugging Face's units: KB/MB/GB are
// powers of 1000, KiB/MiB/GiB of 1024). nullopt if malformed or zero.
std::optional<uint64_t> ParseSize(const std::string& text) {
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30}, {"TIB", 1ull << 40}, {"KB", 1000ull},
      {"MB", 1000ull * 1000}, {"GB", 1000ull * 1000 * 1000}, {"TB", 1000ull * 1000 * 1000 * 1000}, {"B", 1}};
  std::string t;
  for (char c : text) t += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t unit = 1;
  for (const auto& [name, factor] : kUnits) {
    const size_t n = std::strlen(name);
    if (t.size() > n && t.compare(t.size() - n, n, name) == 0) {
      unit = factor;
      t.resize(t.size() - n);
      break;
    }
  }
  if (t.empty() || t.size() > 12 || t.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const uint64_t n = std::stoull(t);
  if (n == 0 || n > UINT64_MAX / unit) return std::nullopt;
  return n * unit;
}

int RunExport(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(step, inspect::ResolveStep(a.root, a.step_a));
  inspect::ExportOptions o;
  o.keys_glob = a.keys;
  if (!a.max_shard_size.empty()) {
    const auto bytes = ParseSize(a.max_shard_size);
    if (!bytes) {
      return Fail(dcp::Status::InvalidArgument("--max-shard-size '" + a.max_shard_size +
                                               "' is not a size such as 5GB, 500MB or 1GiB"));
    }
    o.max_shard_bytes = *bytes;
  }
  dcp::Result<inspect::ExportReport> e = dcp::Status::Internal("not run");
  {
    Progress bar(a.progress());
    o.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total, 0, 0, ""); };
    e = inspect::ExportSafetensors(r, *step, a.safetensors, o);
  }
  if (!e.ok()) return Fail(e.status());
  return Emit(a.json ? inspect::RenderExportJson(*e) : inspect::RenderExportText(*e));
}

int RunCommon(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(step, inspect::ResolveStep(a.root, a.step_a));
  ASSIGN_OR_FAIL(c, inspect::GetCommonState(r, *step));
  return Emit(inspect::RenderCommonJson(*c));
}

int RunGc(inspect::StoreReader* r, const Args& a) {
  ASSIGN_OR_FAIL(s, inspect::SurveyGarbage(r, a.compact_dead_fraction));
  Emit(a.json ? inspect::RenderGarbageJson(*s) : inspect::RenderGarbageTable(*s));
  for (const auto& rank : s->ranks) {
    if (!rank.problem.empty()) return 1;
  }
  return 0;
}

// Not a reader: takes the writer lock and changes the rank stores' metadata.
int RunRepair(const Args& a) {
  ASSIGN_OR_FAIL(s, inspect::RepairStore(a.root));
  Emit(a.json ? inspect::RenderRepairJson(*s) : inspect::RenderRepairText(*s));
  return s->ok() ? 0 : 1;
}

}  // namespace

namespace dcp::inspect {

int RunCli(int argc, char** argv) {
  CLI::App app{"dcp-inspect: see, verify, compare and extract what a dcp checkpoint store holds"};
  app.footer("STEP is a step number or \"latest\". Exit code: 0 OK, 1 error or problems found, 2 bad usage.");
  Args a;
  app.add_option("root", a.root, "store root directory")->required();
  app.add_flag("--json", a.json, "print JSON instead of tables");
  using Run = int (*)(inspect::StoreReader*, const Args&);
  std::vector<std::pair<CLI::App*, Run>> commands;
  auto add = [&](const char* name, const char* help, Run run) {
    CLI::App* sub = app.add_subcommand(name, help);
    sub->add_flag("--json", a.json, "print JSON instead of tables");
    commands.emplace_back(sub, run);
    return sub;
  };
  const char* kStep = "step number or \"latest\"";

  add("ls",
      "list committed steps (the default): commit time, world size, tensors, objects, raw / stored / unique "
      "bytes",
      RunLs);
  auto* show =
      add("show", "a step's tensors (dtype, global shape, chunks, compression), objects and common state", RunShow);
  show->add_option("step", a.step_a, kStep)->required();
  show->add_option("--keys", a.keys, "only keys matching this glob (e.g. 'decoder.*.weight')");
  auto* layout = add("layout", "which rank store holds which region of a tensor, and its coverage", RunLayout);
  layout->add_option("step", a.step_a, kStep)->required();
  layout->add_option("key", a.key, "tensor key")->required();
  auto* verify = add("verify",
                     "read every record of a step (or of every step): checksums, exact cover, manifest "
                     "invariants, references; exit code 1 on any problem",
                     RunVerify);
  verify->add_option("step", a.step_a, "step number or \"latest\" (default: every step)");
  verify->add_option("--threads", a.threads, "reader threads (default: this process's share of the cores)")
      ->check(CLI::Range(0, 1024));
  verify->add_flag("--no-progress", a.no_progress, "no progress bar, even on a terminal");
  auto* diff =
      add("diff", "tensors added, removed and changed between two steps, with the fraction of changed bytes", RunDiff);
  diff->add_option("step_a", a.step_a, "the older step")->required();
  diff->add_option("step_b", a.step_b, "the newer step")->required();
  diff->add_option("--keys", a.keys, "only keys matching this glob");
  diff->add_flag("--exact", a.exact, "decode chunks whose checksums differ and count the changed elements");
  auto* dump = add("dump", "values and statistics of a tensor region (or an object's bytes)", RunDump);
  dump->add_option("step", a.step_a, kStep)->required();
  dump->add_option("key", a.key, "tensor key (or object key)")->required();
  dump->add_option("--region", a.region, "e.g. '0:4,8:16', '3', '-2:' (default: the whole tensor)");
  dump->add_option("--count", a.count, "values shown from the start and from the end (default 8)")
      ->check(CLI::Range(0, 1 << 20));
  auto* npy = dump->add_option("--npy", a.npy,
                               "also write the region to this NumPy .npy file (bfloat16 and fp8 converted exactly "
                               "to float32, which NumPy has)");
  dump->add_flag("--raw", a.raw,
                 "write each element's stored bits to the .npy unchanged, as an unsigned integer of its width "
                 "(<u2 for bfloat16 and float16, |u1 for fp8), instead of converting")
      ->needs(npy);
  auto* exp = add("export", "consolidated full tensors of a step as a safetensors file", RunExport);
  exp->add_option("step", a.step_a, kStep)->required();
  exp->add_option("--safetensors", a.safetensors, "output file")->required();
  exp->add_option("--keys", a.keys, "only tensors whose key matches this glob");
  exp->add_option("--max-shard-size", a.max_shard_size,
                  "split into shards of at most this much tensor data (5GB, 500MB, 1GiB) with an index.json, "
                  "in Hugging Face's layout");
  exp->add_flag("--no-progress", a.no_progress, "no progress bar, even on a terminal");
  auto* common = add("common", "the common state of a step as JSON", RunCommon);
  common->add_option("step", a.step_a, kStep)->required();
  auto* gc = add("gc",
                  "what CollectGarbage would free now (unreferenced puts, dead records of shared puts) and what "
                  "it would leave pending; changes nothing",
                  RunGc);
  gc->add_option("--compact-dead-fraction", a.compact_dead_fraction,
                 "GcOptions::compact_dead_fraction of the collection to predict (default 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  CLI::App* repair = app.add_subcommand(
      "repair",
      "make every rank store consistent again, deleting nothing (damaged RocksDB metadata rebuilt from the table "
      "files, unusable files moved to lost/), then verify every step and mark those that lost data damaged (loads "
      "refuse them; ls shows them); needs the writer lock");
  repair->add_flag("--json", a.json, "print JSON instead of text");
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (repair->parsed()) return RunRepair(a);
  auto reader = inspect::StoreReader::Open(a.root);
  if (!reader.ok()) return Fail(reader.status());
  for (const auto& [sub, run] : commands) {
    if (sub->parsed()) return run(reader->get(), a);
  }
  return RunLs(reader->get(), a);
}

}  // namespace dcp::inspect
