// Copyright (c) dcp authors.

#include "engine/inspect/inspect.h"

#include <fmt/core.h>
#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <set>

#include "engine/manifest/common_state_codec.h"
#include "engine/store/catalog.h"

namespace dcp::inspect {
namespace {

using i128 = __int128;

StepSummary Summarize(const LoadedStep& step) {
  StepSummary s;
  s.info = manifest::Describe(step.manifest()).info;
  const Status problem = step.FirstProblem();
  if (!problem.ok()) s.problem = problem.message();
  return s;
}

// Accumulates the map: per cell, the elements covered (with multiplicity)
// and the ranks seen.
struct CellState {
  i128 covered = 0;
  int64_t rank = -1;  // -1 none yet, -2 several
};

// A box is drawable if it lies inside the extents (checked without overflow).
bool Inside(int64_t origin, int64_t size, int64_t extent) {
  return origin >= 0 && size >= 0 && origin <= extent && size <= extent - origin;
}

std::vector<int64_t> Cuts(int64_t extent, int cells) {
  std::vector<int64_t> cuts(static_cast<size_t>(cells) + 1);
  for (int i = 0; i <= cells; ++i) cuts[i] = static_cast<int64_t>(static_cast<i128>(extent) * i / cells);
  return cuts;
}

LayoutMap DrawMap(const manifest::TensorEntry& t) {
  LayoutMap map;
  const bool one_d = t.global_shape.size() == 1;
  const int64_t rows = one_d ? 1 : t.global_shape[0];
  const int64_t cols = one_d ? t.global_shape[0] : t.global_shape[1];
  if (rows <= 0 || cols <= 0) return map;
  const int nr = static_cast<int>(std::min<int64_t>(rows, LayoutMap::kMaxMapRows));
  const int nc = static_cast<int>(std::min<int64_t>(cols, LayoutMap::kMaxMapCols));
  map.row_cuts = Cuts(rows, nr);
  map.col_cuts = Cuts(cols, nc);
  std::vector<CellState> cells(static_cast<size_t>(nr) * nc);
  // First and one-past-last cell that [lo, hi) touches.
  auto cell_range = [](const std::vector<int64_t>& cuts, int64_t lo, int64_t hi) {
    const auto first = std::upper_bound(cuts.begin(), cuts.end(), lo) - cuts.begin() - 1;
    const auto last = std::lower_bound(cuts.begin(), cuts.end(), hi) - cuts.begin();
    return std::pair<int64_t, int64_t>(first, last);
  };
  for (const manifest::ChunkEntry& c : t.chunks) {
    const int64_t r0 = one_d ? 0 : c.box.origin[0], rs = one_d ? 1 : c.box.shape[0];
    const int64_t c0 = one_d ? c.box.origin[0] : c.box.origin[1], cs = one_d ? c.box.shape[0] : c.box.shape[1];
    if (!Inside(r0, rs, rows) || !Inside(c0, cs, cols) || rs == 0 || cs == 0) continue;  // reported by coverage
    const auto [ri, rj] = cell_range(map.row_cuts, r0, r0 + rs);
    const auto [ci, cj] = cell_range(map.col_cuts, c0, c0 + cs);
    for (int64_t i = ri; i < rj; ++i) {
      const int64_t h = std::min(r0 + rs, map.row_cuts[i + 1]) - std::max(r0, map.row_cuts[i]);
      for (int64_t j = ci; j < cj; ++j) {
        const int64_t w = std::min(c0 + cs, map.col_cuts[j + 1]) - std::max(c0, map.col_cuts[j]);
        CellState& cell = cells[static_cast<size_t>(i * nc + j)];
        cell.covered += static_cast<i128>(h) * w;
        const int64_t rank = c.record.store_rank;
        cell.rank = cell.rank == -1 || cell.rank == rank ? rank : -2;
      }
    }
  }
  for (int i = 0; i < nr; ++i) {
    std::string line;
    for (int j = 0; j < nc; ++j) {
      const CellState& cell = cells[static_cast<size_t>(i) * nc + j];
      const i128 area =
          static_cast<i128>(map.row_cuts[i + 1] - map.row_cuts[i]) * (map.col_cuts[j + 1] - map.col_cuts[j]);
      if (cell.covered < area) {
        line.push_back(kHoleCell);
      } else if (cell.covered > area) {
        line.push_back(kOverlapCell);
      } else {
        line.push_back(cell.rank == -2 ? kMixedCell : RankChar(static_cast<uint32_t>(cell.rank)));
      }
    }
    map.cells.push_back(std::move(line));
  }
  return map;
}

}  // namespace

bool KeyMatches(std::string_view glob, const std::string& key) {
  if (glob.empty()) return true;
  return ::fnmatch(std::string(glob).c_str(), key.c_str(), 0) == 0;
}

char RankChar(uint32_t rank) {
  static constexpr char kChars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return rank < sizeof(kChars) - 1 ? kChars[rank] : '#';
}

Result<std::vector<StepSummary>> ListSteps(StoreReader* reader) {
  DCP_ASSIGN_OR_RETURN(std::vector<uint64_t> steps, reader->Steps());
  std::vector<StepSummary> out;
  for (uint64_t step : steps) {
    auto loaded = reader->Load(step);
    StepSummary s;
    if (loaded.ok()) {
      s = Summarize(**loaded);
    } else {
      s.info.step = step;
      s.problem = loaded.status().message();
    }
    auto damage = storage::StepDamage(reader->root(), step);
    if (!damage.ok()) s.damage = "the damaged mark is unreadable: " + damage.status().message();
    else if (damage->has_value()) s.damage = **damage;
    out.push_back(std::move(s));
  }
  return out;
}

Result<StepDetail> ShowStep(StoreReader* reader, uint64_t step, const std::string& keys_glob) {
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> loaded, reader->Load(step));
  const manifest::StepManifest& m = loaded->manifest();
  StepDetail d;
  d.summary = Summarize(*loaded);
  if (auto damage = storage::StepDamage(reader->root(), step); damage.ok() && damage->has_value()) {
    d.summary.damage = **damage;
  }
  d.keys_glob = keys_glob;
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const manifest::TensorEntry& t = m.tensors[i];
    if (!KeyMatches(keys_glob, t.key)) continue;
    TensorSummary ts;
    ts.info.key = t.key;
    ts.info.dtype = t.dtype;
    ts.info.global_shape = t.global_shape;
    ts.info.num_chunks = t.chunks.size();
    ts.info.raw_bytes = t.raw_bytes();
    ts.info.stored_bytes = t.stored_bytes();
    std::set<uint32_t> ranks;
    for (const manifest::ChunkEntry& c : t.chunks) {
      ranks.insert(c.record.store_rank);
      if (manifest::WrittenByStep(c.record, m)) ts.unique_bytes += c.record.stored_size;
    }
    ts.num_ranks = static_cast<uint32_t>(ranks.size());
    if (!loaded->tensor_status[i].ok()) ts.problem = loaded->tensor_status[i].message();
    d.tensors.push_back(std::move(ts));
  }
  for (size_t i = 0; i < m.objects.size(); ++i) {
    const manifest::ObjectEntry& o = m.objects[i];
    const std::string uk = o.unique_key();
    if (!KeyMatches(keys_glob, o.key) && !KeyMatches(keys_glob, uk)) continue;
    ObjectSummary os;
    os.info.key = o.key;
    os.info.unique_key = uk;
    os.info.global_shape = o.global_shape;
    os.info.global_offset = o.global_offset;
    os.info.size = o.record.raw_size;
    os.stored_bytes = o.record.stored_size;
    os.store_rank = o.record.store_rank;
    if (!loaded->object_status[i].ok()) os.problem = loaded->object_status[i].message();
    d.objects.push_back(std::move(os));
  }
  d.common.encoded_bytes = m.common_state.size();
  auto common = manifest::DecodeCommonState(m.common_state);
  if (!common.ok()) {
    d.common.problem = common.status().message();
  } else if (common->kind() == Value::Kind::kMap) {
    for (size_t i = 0; i < common->size(); ++i)
      d.common.entries.emplace_back(common->keys()[i], ShortValue(common->at(i)));
  } else {
    d.common.entries.emplace_back("", ShortValue(*common));
  }
  return d;
}

Result<TensorLayout> GetLayout(StoreReader* reader, uint64_t step, const std::string& key) {
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> loaded, reader->Load(step));
  const manifest::TensorEntry* t = loaded->FindTensor(key);
  if (t == nullptr) return reader->Tensor(*loaded, key).status();  // the NotFound message
  TensorLayout l;
  l.step = step;
  l.generation = loaded->manifest().generation;
  l.loaded = loaded;
  l.tensor = t;
  l.coverage = loaded->tensor_status[static_cast<size_t>(t - loaded->manifest().tensors.data())];
  std::map<uint32_t, RankShare> ranks;
  for (const manifest::ChunkEntry& c : t->chunks) {
    RankShare& r = ranks[c.record.store_rank];
    r.rank = c.record.store_rank;
    ++r.chunks;
    r.raw_bytes += c.record.raw_size;
    r.stored_bytes += c.record.stored_size;
    r.elements += c.record.raw_size / std::max<size_t>(DTypeSize(t->dtype), 1);
  }
  for (auto& [rank, share] : ranks) l.ranks.push_back(share);
  if (t->global_shape.size() == 1 || t->global_shape.size() == 2) l.map = DrawMap(*t);
  return l;
}

Result<Value> GetCommonState(StoreReader* reader, uint64_t step) {
  DCP_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStep> loaded, reader->Load(step));
  auto v = manifest::DecodeCommonState(loaded->manifest().common_state);
  if (!v.ok()) return v.status().Annotate("common state of step " + std::to_string(step));
  return v;
}

std::string ShortValue(const Value& v, size_t max_chars) {
  switch (v.kind()) {
    case Value::Kind::kNull: return "null";
    case Value::Kind::kBool: return v.as_bool() ? "true" : "false";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return fmt::format("{}", v.as_float());
    case Value::Kind::kString: {
      const std::string& s = v.as_string();
      std::string out = "\"";
      for (unsigned char c : s.substr(0, max_chars)) out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
      return out + (s.size() > max_chars ? "...\"" : "\"");
    }
    case Value::Kind::kBytes: return fmt::format("<{} bytes>", v.as_string().size());
    case Value::Kind::kList: return fmt::format("[{} items]", v.size());
    case Value::Kind::kMap: return fmt::format("{{{} keys}}", v.size());
    case Value::Kind::kTensor:
      return fmt::format("tensor {} {}", DTypeName(v.tensor_dtype()), ShapeToString(v.tensor_shape()));
  }
  return "?";
}

}  // namespace dcp::inspect
