// Copyright (c) dcp authors.
//
// The human-readable renderings (render_json.cc has the JSON ones).

#include "engine/inspect/render.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "engine/codec/chunk_codec.h"

namespace dcp::inspect {
namespace {

std::string Ratio(uint64_t raw, uint64_t stored) {
  if (stored == 0) return "-";
  return fmt::format("{:.3f}", static_cast<double>(raw) / static_cast<double>(stored));
}

std::string Percent(double fraction) { return fmt::format("{:.2f}%", 100.0 * fraction); }

std::string Elements(DType dtype, const std::string& bytes) {
  const size_t size = std::max<size_t>(DTypeSize(dtype), 1);
  std::string out;
  for (size_t i = 0; i + size <= bytes.size(); i += size) {
    if (i) out += ' ';
    out += FormatElement(dtype, bytes.data() + i);
  }
  return out;
}

std::string Number(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "-"; }

std::string ProblemLocation(const Problem& p) {
  std::string where = fmt::format("step {}", p.step);
  if (!p.key.empty()) where += p.offset ? fmt::format(": tensor '{}'", p.key) : fmt::format(": '{}'", p.key);
  if (p.offset) where += " chunk at offset " + ShapeToString(*p.offset);
  if (p.rank) where += fmt::format(" in rank store {}", *p.rank);
  return where;
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

std::string TimeString(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string RenderStepsTable(const std::vector<StepSummary>& steps) {
  if (steps.empty()) return "no committed steps\n";
  std::string out = fmt::format("{:>10}  {:<20}  {:>5}  {:>7}  {:>7}  {:>7}  {:>11}  {:>11}  {:>11}\n", "step",
                                "committed (UTC)", "ranks", "tensors", "objects", "chunks", "raw", "stored", "unique");
  for (const StepSummary& s : steps) {
    const StepInfo& i = s.info;
    if (i.generation == 0 && !s.problem.empty()) {
      out += fmt::format("{:>10}  unreadable: {}\n", i.step, s.problem);
      continue;
    }
    out += fmt::format("{:>10}  {:<20}  {:>5}  {:>7}  {:>7}  {:>7}  {:>11}  {:>11}  {:>11}\n", i.step,
                       TimeString(i.commit_time_ns), i.world_size, i.num_tensors, i.num_objects, i.num_chunks,
                       HumanBytes(i.raw_bytes), HumanBytes(i.stored_bytes), HumanBytes(i.unique_bytes));
    if (!s.problem.empty()) out += fmt::format("{:>10}  problem: {}\n", "", s.problem);
    if (!s.damage.empty()) out += fmt::format("{:>10}  DAMAGED (loads refuse it): {}\n", "", s.damage);
  }
  return out;
}

std::string RenderStepTable(const StepDetail& d) {
  const StepInfo& s = d.summary.info;
  std::string out = fmt::format(
      "step {} (generation {:016x}), committed {} by {} ranks: {} tensors, {} objects, {} chunks\n"
      "  {} raw, {} stored (ratio {}), {} unique to this step\n",
      s.step, s.generation, TimeString(s.commit_time_ns), s.world_size, s.num_tensors, s.num_objects, s.num_chunks,
      HumanBytes(s.raw_bytes), HumanBytes(s.stored_bytes), Ratio(s.raw_bytes, s.stored_bytes),
      HumanBytes(s.unique_bytes));
  if (!d.summary.damage.empty()) out += "  DAMAGED (loads refuse it): " + d.summary.damage + "\n";
  if (!d.keys_glob.empty()) {
    out +=
        fmt::format("  keys matching '{}': {} tensors, {} objects\n", d.keys_glob, d.tensors.size(), d.objects.size());
  }
  if (!d.tensors.empty()) {
    size_t width = 3;
    for (const TensorSummary& t : d.tensors) width = std::max(width, t.info.key.size());
    out += fmt::format("\n{:<{}}  {:<11}  {:<22}  {:>6}  {:>11}  {:>11}  {:>6}\n", "key", width, "dtype",
                       "global shape", "chunks", "raw", "stored", "ratio");
    for (const TensorSummary& t : d.tensors) {
      out += fmt::format("{:<{}}  {:<11}  {:<22}  {:>6}  {:>11}  {:>11}  {:>6}\n", t.info.key, width,
                         DTypeName(t.info.dtype), ShapeToString(t.info.global_shape), t.info.num_chunks,
                         HumanBytes(t.info.raw_bytes), HumanBytes(t.info.stored_bytes),
                         Ratio(t.info.raw_bytes, t.info.stored_bytes));
      if (!t.problem.empty()) out += "  problem: " + t.problem + "\n";
    }
  }
  if (!d.objects.empty()) {
    out += "\nobjects:\n";
    for (const ObjectSummary& o : d.objects) {
      out += fmt::format("  {}  ({}, rank store {})\n", o.info.unique_key, HumanBytes(o.info.size), o.store_rank);
      if (!o.problem.empty()) out += "    problem: " + o.problem + "\n";
    }
  }
  out += fmt::format("\ncommon state ({} encoded):", HumanBytes(d.common.encoded_bytes));
  if (!d.common.problem.empty()) return out + " cannot be decoded: " + d.common.problem + "\n";
  if (d.common.entries.empty()) return out + " empty\n";
  out += "\n";
  for (const auto& [key, value] : d.common.entries) out += fmt::format("  {}: {}\n", key, value);
  return out;
}

std::string RenderLayoutTable(const TensorLayout& l) {
  const manifest::TensorEntry& t = *l.tensor;
  std::string out = fmt::format("tensor '{}' of step {}: {} {}, {} chunks in {} rank stores\ncoverage: {}\n", t.key,
                                l.step, DTypeName(t.dtype), ShapeToString(t.global_shape), t.chunks.size(),
                                l.ranks.size(), l.coverage.ok() ? "exact (every element once)" : l.coverage.message());
  if (!l.map.empty()) {
    const bool one_d = t.global_shape.size() == 1;
    const int64_t cols = l.map.col_cuts.back();
    out += one_d ? fmt::format("\nmap: elements 0..{} across, {} per cell (at most)\n", cols,
                               (cols + l.map.cells[0].size() - 1) / l.map.cells[0].size())
                 : fmt::format("\nmap: rows 0..{} down, columns 0..{} across; one cell is at most {} x {} elements\n",
                               l.map.row_cuts.back(), cols,
                               (l.map.row_cuts.back() + l.map.cells.size() - 1) / l.map.cells.size(),
                               (cols + l.map.cells[0].size() - 1) / l.map.cells[0].size());
    const int label = static_cast<int>(std::to_string(l.map.row_cuts.back()).size());
    for (size_t i = 0; i < l.map.cells.size(); ++i) {
      out += one_d ? fmt::format("  |{}|\n", l.map.cells[i])
                   : fmt::format("  {:>{}} |{}|\n", l.map.row_cuts[i], label, l.map.cells[i]);
    }
    out += fmt::format(
        "legend: 0-9 a-z A-Z rank store, '{}' several ranks in a cell, '{}' not covered, '{}' covered "
        "more than once\n",
        kMixedCell, kHoleCell, kOverlapCell);
  } else {
    out += fmt::format("\n{:>24}  {:<24}  {:>5}  {:>11}  {:>11}  {:<5}\n", "offset", "shape", "rank", "raw", "stored",
                       "codec");
    for (const manifest::ChunkEntry& c : t.chunks) {
      out += fmt::format("{:>24}  {:<24}  {:>5}  {:>11}  {:>11}  {:<5}\n", ShapeToString(c.box.origin),
                         ShapeToString(c.box.shape), c.record.store_rank, HumanBytes(c.record.raw_size),
                         HumanBytes(c.record.stored_size), codec::ChunkCodecName(c.record.codec));
    }
  }
  out += fmt::format("\n{:>5}  {:>3}  {:>6}  {:>14}  {:>11}  {:>11}\n", "rank", "map", "chunks", "elements", "raw",
                     "stored");
  for (const RankShare& r : l.ranks) {
    out += fmt::format("{:>5}  {:>3}  {:>6}  {:>14}  {:>11}  {:>11}\n", r.rank, RankChar(r.rank), r.chunks, r.elements,
                       HumanBytes(r.raw_bytes), HumanBytes(r.stored_bytes));
  }
  return out;
}

std::string RenderVerifyText(const VerifyReport& r, size_t max_problems) {
  std::string out = fmt::format(
      "verified {} step{}: {} tensors, {} chunk and {} object references, {} records read ({} stored, {} decoded) "
      "in {:.2f} s ({}/s)\n",
      r.steps.size(), r.steps.size() == 1 ? "" : "s", r.tensors, r.chunks, r.objects, r.records_read,
      HumanBytes(r.stored_bytes), HumanBytes(r.raw_bytes), r.seconds,
      HumanBytes(r.seconds > 0 ? static_cast<uint64_t>(r.stored_bytes / r.seconds) : 0));
  if (r.ok()) return out + "OK: no problems\n";
  out += fmt::format("{} problem{}:\n", r.problems.size(), r.problems.size() == 1 ? "" : "s");
  for (size_t i = 0; i < r.problems.size() && i < max_problems; ++i) {
    const Problem& p = r.problems[i];
    out += fmt::format("  [{}] {}: {}\n", ProblemKindName(p.kind), ProblemLocation(p), p.message);
  }
  if (r.problems.size() > max_problems) {
    out += fmt::format("  ... and {} more (--json lists all)\n", r.problems.size() - max_problems);
  }
  return out;
}

std::string RenderDiffTable(const DiffReport& d) {
  std::string out =
      fmt::format("step {} -> step {}{}: {} of {} changed ({}){}\n", d.step_a, d.step_b,
                  d.keys_glob.empty() ? "" : " (keys matching '" + d.keys_glob + "')", HumanBytes(d.changed_bytes),
                  HumanBytes(d.bytes), Percent(d.changed_fraction()),
                  d.exact ? "" : ", counting whole chunks whose checksums differ (--exact counts elements)");
  size_t same = 0, width = 3;
  for (const TensorDiff& t : d.tensors) {
    if (t.change == Change::kSame) ++same;
    width = std::max(width, t.key.size());
  }
  if (same != d.tensors.size()) {
    out += fmt::format("\n{:<8}  {:<{}}  {:>11}  {:>11}  {:>8}  {}\n", "change", "key", width, "changed", "of",
                       "fraction", "detail");
    for (const TensorDiff& t : d.tensors) {
      if (t.change == Change::kSame) continue;
      std::string detail;
      if (t.change == Change::kRetyped) {
        detail = fmt::format("{} {} -> {} {}", DTypeName(t.dtype_a), ShapeToString(t.shape_a), DTypeName(t.dtype_b),
                             ShapeToString(t.shape_b));
      } else if (t.change == Change::kAdded) {
        detail = fmt::format("{} {}", DTypeName(t.dtype_b), ShapeToString(t.shape_b));
      } else if (t.change == Change::kRemoved) {
        detail = fmt::format("{} {}", DTypeName(t.dtype_a), ShapeToString(t.shape_a));
      } else {
        detail = t.exact ? "elements" : "whole chunks";
      }
      out += fmt::format("{:<8}  {:<{}}  {:>11}  {:>11}  {:>8}  {}\n", ChangeName(t.change), t.key, width,
                         HumanBytes(t.changed_bytes), HumanBytes(t.bytes), Percent(t.changed_fraction()), detail);
    }
  }
  out += fmt::format("{} tensor{} unchanged\n", same, same == 1 ? "" : "s");
  for (const ObjectDiff& o : d.objects) {
    if (o.change != Change::kSame) out += fmt::format("object {}: {}\n", o.unique_key, ChangeName(o.change));
  }
  if (d.common_state_changed) {
    std::string keys;
    for (const std::string& k : d.common_keys_changed) keys += (keys.empty() ? "" : ", ") + k;
    out += "common state changed" + (keys.empty() ? std::string() : ": " + keys) + "\n";
  } else {
    out += "common state unchanged\n";
  }
  return out;
}

std::string RenderDumpText(const DumpReport& d) {
  if (d.is_object) {
    std::string hex;
    for (size_t i = 0; i < d.object_bytes.size(); ++i) {
      hex += fmt::format("{}{:02x}", i % 32 == 0 ? (i ? "\n  " : "  ") : " ",
                         static_cast<unsigned char>(d.object_bytes[i]));
    }
    return fmt::format("object '{}' of step {}: {}\n{}{}\n", d.key, d.step, HumanBytes(d.object_size), hex,
                       d.object_size > d.object_bytes.size() ? "\n  ..." : "");
  }
  const uint64_t n = d.stats.count();
  std::string out = fmt::format("tensor '{}' of step {}: {} {}, region {} ({} elements)\n", d.key, d.step,
                                DTypeName(d.dtype), ShapeToString(d.global_shape), d.region.ToString(), n);
  if (n > 0) {
    out += fmt::format("{}min {}  max {}  mean {}  std {}  nan {}  inf {}  zeros {}\n",
                       IsComplex(d.dtype) ? "of |z|: " : "", Number(d.stats.min()), Number(d.stats.max()),
                       Number(d.stats.mean()), Number(d.stats.std()), d.stats.nan(), d.stats.inf(), d.stats.zeros());
    if (d.tail.empty()) {
      out += "values: " + Elements(d.dtype, d.head) + "\n";
    } else {
      out += fmt::format("first {}: {}\n", d.head_count(), Elements(d.dtype, d.head));
      out += fmt::format("last {}: {}\n", d.tail_count(), Elements(d.dtype, d.tail));
    }
  }
  if (!d.npy_path.empty()) {
    std::string note;
    if (d.npy_raw_bits) {
      note = fmt::format(", the raw bits of {}", DTypeName(d.dtype));
    } else if (d.npy_descr == "<f4" && d.dtype != DType::kFloat32) {
      note = fmt::format(", {} converted exactly to float32", DTypeName(d.dtype));
    }
    out += fmt::format("wrote {} ({}{})\n", d.npy_path, d.npy_descr, note);
  }
  return out;
}

std::string RenderExportText(const ExportReport& r) {
  std::string out =
      fmt::format("exported {} tensors of step {} to {}: {} ({} of header) in {:.2f} s ({}/s)\n", r.tensors, r.step,
                  r.path, HumanBytes(r.header_bytes + r.data_bytes), HumanBytes(r.header_bytes), r.seconds,
                  HumanBytes(r.seconds > 0 ? static_cast<uint64_t>(r.data_bytes / r.seconds) : 0));
  if (r.files.size() > 1) out += fmt::format("{} shards: {} .. {}\n", r.files.size(), r.files.front(), r.files.back());
  if (r.skipped_objects) out += fmt::format("{} objects are not tensors and were not exported\n", r.skipped_objects);
  return out;
}

std::string ProgressLine(uint64_t bytes_done, uint64_t bytes_total, uint64_t items_done, uint64_t items_total,
                         const char* items, double seconds, int bar_width) {
  const double fraction = bytes_total ? std::min(1.0, static_cast<double>(bytes_done) / bytes_total)
                                      : (items_total ? static_cast<double>(items_done) / items_total : 1.0);
  const int filled = static_cast<int>(fraction * bar_width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(bar_width - filled), '-');
  std::string line = fmt::format("[{}] {:>3}%", bar, static_cast<int>(fraction * 100));
  if (items_total) line += fmt::format("  {}/{} {}", items_done, items_total, items);
  line += fmt::format("  {}/{}", HumanBytes(bytes_done), HumanBytes(bytes_total));
  if (seconds >= 0.1) line += fmt::format("  {}/s", HumanBytes(static_cast<uint64_t>(bytes_done / seconds)));
  return line;
}

}  // namespace dcp::inspect
