// Copyright (c) dcp authors.
//
// dcp-inspect gc: what Store::CollectGarbage would reclaim now, and what it
// would leave pending, without changing anything (rank stores are opened as
// read instances; no writer lock is needed).
//
// Per rank store: whole puts no committed step references (the next
// collection drops their table files), and puts that later incremental steps
// still share but whose other records are dead. Their dead bytes are freed by
// the next collection once at least `compact_dead_fraction` of the put is
// dead (GcOptions, default 0.5); below that they stay pending until more of
// the put dies or a collection runs with a lower fraction (0 frees all).
//
// Errors: a manifest that cannot be decoded fails the survey (as the
// collection refuses to run: it would hide references); a rank store that
// cannot be read is listed with its problem.
//
// Thread safety: as the StoreReader.

#ifndef DCP_ENGINE_INSPECT_GC_H_
#define DCP_ENGINE_INSPECT_GC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dcp/status.h"
#include "engine/inspect/reader.h"
#include "engine/store/gc.h"

namespace dcp::inspect {

struct RankGarbage {
  uint32_t rank = 0;
  std::string path;
  storage::RankGcSurvey survey;
  std::string problem;  // non-empty if the rank store could not be surveyed
};

struct GarbageSurvey {
  uint64_t steps = 0;  // committed steps whose references were counted
  double compact_dead_fraction = 0.5;
  std::vector<RankGarbage> ranks;  // every rank store under ranks/, by rank
  storage::RankGcSurvey total;
};

Result<GarbageSurvey> SurveyGarbage(StoreReader* reader, double compact_dead_fraction);

std::string RenderGarbageTable(const GarbageSurvey& s);
std::string RenderGarbageJson(const GarbageSurvey& s);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_GC_H_
