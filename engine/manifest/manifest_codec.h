// Copyright (c) dcp authors.
//
// The manifest codec: StepManifest <-> the bytes of a manifest file
// (a framed FlatBuffer, magic "DCPMANIF", see docs/format.md).
//
// Decoding trusts nothing: frame (magic, version, size, checksum), then the
// FlatBuffers Verifier (offsets, bounds, nesting), then required fields and
// vector lengths, then the semantic invariants of manifest.h. Every failure
// is DataLoss naming `what` (usually the file path).
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_MANIFEST_MANIFEST_CODEC_H_
#define DCP_ENGINE_MANIFEST_MANIFEST_CODEC_H_

#include <string>
#include <string_view>

#include "dcp/status.h"
#include "engine/codec/frame.h"
#include "engine/manifest/manifest.h"

namespace dcp::manifest {

constexpr const char* kManifestMagic = codec::kManifestFrameMagic;

std::string EncodeManifest(const StepManifest& m);

Result<StepManifest> DecodeManifest(std::string_view bytes, std::string_view what);

// The FlatBuffer payload only (no frame, no invariant checks): used to ship a
// rank's partial manifest during a put, where the frame adds nothing.
// REQUIRES (both encoders): every chunk box has the rank of its tensor's
// global shape, which says how many box coordinates each chunk stores.
std::string EncodeManifestPayload(const StepManifest& m);
Result<StepManifest> DecodeManifestPayload(std::string_view payload, std::string_view what);

}  // namespace dcp::manifest

#endif  // DCP_ENGINE_MANIFEST_MANIFEST_CODEC_H_
