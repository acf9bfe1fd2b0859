// Copyright (c) dcp authors.
//
// The library behind dcp-inspect: reads a store's catalog and manifests
// (never its rank stores, for these views) and renders what it finds as
// human-readable tables or JSON. The tool is a thin main over this; tests
// call it directly.
//
// Errors: NotFound / FailedPrecondition for a missing path, a path that is not
// a dcp store, or an unknown step; DataLoss for a corrupt manifest.
//
// Thread safety: pure functions over the filesystem.

#ifndef DCP_ENGINE_INSPECT_INSPECT_H_
#define DCP_ENGINE_INSPECT_INSPECT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dcp/metadata.h"
#include "dcp/status.h"

namespace dcp::inspect {

// Summaries of every committed step, ascending.
Result<std::vector<StepInfo>> ListSteps(const std::string& root);
// What one step holds.
Result<StepMetadata> ShowStep(const std::string& root, uint64_t step);

std::string RenderStepsTable(const std::vector<StepInfo>& steps);
std::string RenderStepsJson(const std::vector<StepInfo>& steps);
std::string RenderStepTable(const StepMetadata& step);
std::string RenderStepJson(const StepMetadata& step);

// "1.50 GiB", "512 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_INSPECT_H_
