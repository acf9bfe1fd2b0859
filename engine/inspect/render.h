// Copyright (c) dcp authors.
//
// How dcp-inspect shows its results: human-readable tables (Render*Table /
// Render*Text) and JSON for scripts (Render*Json, one document per call, 2-
// space indented, ending in a newline). JSON field names are stable; sizes
// are in bytes, shapes and offsets in elements, checksums in hex, floats that
// are not finite as the strings "nan", "inf", "-inf", and non-UTF-8 strings
// with U+FFFD in place of bad bytes.
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_INSPECT_RENDER_H_
#define DCP_ENGINE_INSPECT_RENDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dcp/value.h"
#include "engine/inspect/diff.h"
#include "engine/inspect/dump.h"
#include "engine/inspect/export.h"
#include "engine/inspect/inspect.h"
#include "engine/inspect/verify.h"

namespace dcp::inspect {

// "1.50 GiB", "512 B".
std::string HumanBytes(uint64_t bytes);
// "2026-11-28 10:00:00Z".
std::string TimeString(int64_t unix_ns);

// ls
std::string RenderStepsTable(const std::vector<StepSummary>& steps);
std::string RenderStepsJson(const std::vector<StepSummary>& steps);
// show
std::string RenderStepTable(const StepDetail& step);
std::string RenderStepJson(const StepDetail& step);
// layout
std::string RenderLayoutTable(const TensorLayout& layout);
std::string RenderLayoutJson(const TensorLayout& layout);
// verify: at most `max_problems` problems are listed in text (the JSON has all).
std::string RenderVerifyText(const VerifyReport& report, size_t max_problems = 200);
std::string RenderVerifyJson(const VerifyReport& report);
// diff: text lists the tensors that are not the same.
std::string RenderDiffTable(const DiffReport& diff);
std::string RenderDiffJson(const DiffReport& diff);
// dump
std::string RenderDumpText(const DumpReport& dump);
std::string RenderDumpJson(const DumpReport& dump);
// export
std::string RenderExportText(const ExportReport& report);
std::string RenderExportJson(const ExportReport& report);
// common: always JSON. Bytes are {"__dcp_bytes__": "<base64>"}; small tensors
// {"__dcp_tensor__": "<dtype>", "shape": [..], "values": [..]}.
std::string RenderCommonJson(const Value& common);

// One line of a progress bar (no newline; the caller prefixes '\r'):
// "[#########-----------]  45%  12/27 records  1.20 GiB/2.60 GiB  340 MB/s".
std::string ProgressLine(uint64_t bytes_done, uint64_t bytes_total, uint64_t items_done, uint64_t items_total,
                         const char* items, double seconds, int bar_width = 24);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_RENDER_H_
