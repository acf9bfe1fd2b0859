// Copyright (c) dcp authors.
//
// The library behind dcp-inspect: what a store's steps hold, from their
// manifests (ListSteps, ShowStep, GetLayout, GetCommonState). Reading and
// checking the records themselves lives in verify.h, diff.h, dump.h and
// export.h; turning results into tables or JSON in render.h. The tool is a
// thin main over these; tests call them directly.
//
// Errors: NotFound / FailedPrecondition for a missing path, a path that is not
// a dcp store, an unknown step or key; DataLoss for a manifest that cannot be
// decoded. A manifest that decodes but breaks an invariant (e.g. chunks that
// overlap) is still described, with the problem attached to the entry.
//
// Thread safety: functions are as thread-safe as the StoreReader they use.

#ifndef DCP_ENGINE_INSPECT_INSPECT_H_
#define DCP_ENGINE_INSPECT_INSPECT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dcp/metadata.h"
#include "dcp/status.h"
#include "dcp/value.h"
#include "engine/inspect/reader.h"
#include "engine/manifest/manifest.h"

namespace dcp::inspect {

// True if `key` matches the shell-style `glob` (fnmatch: `*`, `?`, `[...]`;
// `*` also matches '.' and '/'). An empty glob matches every key.
bool KeyMatches(std::string_view glob, const std::string& key);

// One committed step, as `ls` lists it.
struct StepSummary {
  StepInfo info;        // step, generation, commit time, world size, counts, raw / stored / unique bytes
  std::string problem;  // non-empty if the manifest is unreadable or inconsistent
  std::string damage;   // non-empty if a repair marked the step damaged: why
};

// Every committed step, ascending. A step whose manifest cannot be decoded is
// listed with its problem (and zero counts) rather than failing the listing.
Result<std::vector<StepSummary>> ListSteps(StoreReader* reader);

struct TensorSummary {
  TensorInfo info;            // key, dtype, global shape, chunks, raw and stored bytes
  uint64_t unique_bytes = 0;  // stored bytes of this step's own records
  uint32_t num_ranks = 0;     // distinct rank stores holding its chunks
  std::string problem;        // the broken invariant, if any
};

struct ObjectSummary {
  ObjectInfo info;
  uint64_t stored_bytes = 0;
  uint32_t store_rank = 0;
  std::string problem;
};

// The common state at a glance: its top-level entries, each rendered short.
struct CommonSummary {
  uint64_t encoded_bytes = 0;
  std::vector<std::pair<std::string, std::string>> entries;  // key -> short value
  std::string problem;                                       // undecodable
};

struct StepDetail {
  StepSummary summary;                 // of the whole step
  std::string keys_glob;               // the filter applied to tensors and objects
  std::vector<TensorSummary> tensors;  // matching the filter, by key
  std::vector<ObjectSummary> objects;  // matching the filter (by key or unique key)
  CommonSummary common;
};

// What one step holds; `keys_glob` filters tensors and objects.
Result<StepDetail> ShowStep(StoreReader* reader, uint64_t step, const std::string& keys_glob = "");

// Characters of the layout map: a rank store (0-9, a-z, A-Z for ranks 0..61,
// '#' beyond), several ranks in one cell, a cell not fully covered, a cell
// covered more than once.
char RankChar(uint32_t rank);
constexpr char kMixedCell = '+';
constexpr char kHoleCell = '.';
constexpr char kOverlapCell = '!';

// A 1-D or 2-D tensor drawn on a grid of at most kMaxMapRows x kMaxMapCols
// cells; cell (i, j) covers rows [row_cuts[i], row_cuts[i+1]) and columns
// [col_cuts[j], col_cuts[j+1]). A 1-D tensor is one row (row_cuts {0, 1}).
struct LayoutMap {
  static constexpr int kMaxMapRows = 24;
  static constexpr int kMaxMapCols = 64;
  std::vector<int64_t> row_cuts;
  std::vector<int64_t> col_cuts;
  std::vector<std::string> cells;  // one string per row, one char per cell
  bool empty() const { return cells.empty(); }
};

struct RankShare {
  uint32_t rank = 0;
  uint64_t chunks = 0;
  uint64_t elements = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
};

struct TensorLayout {
  uint64_t step = 0;
  uint64_t generation = 0;                        // the step's
  std::shared_ptr<const LoadedStep> loaded;       // owns *tensor
  const manifest::TensorEntry* tensor = nullptr;  // key, dtype, shape, chunks
  std::vector<RankShare> ranks;                   // ascending by rank
  Status coverage;                                // OK: every element exactly once; else what is wrong
  LayoutMap map;                                  // 1-D and 2-D tensors with elements
};

// Which rank store holds which region of tensor `key`. NotFound naming the
// key and step if absent (an object's key says so).
Result<TensorLayout> GetLayout(StoreReader* reader, uint64_t step, const std::string& key);

// The step's common state. DataLoss if it cannot be decoded.
Result<Value> GetCommonState(StoreReader* reader, uint64_t step);

// A one-line rendering of a value: scalars as literals, strings quoted (cut
// after `max_chars`), containers and tensors by size.
std::string ShortValue(const Value& v, size_t max_chars = 48);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_INSPECT_H_
