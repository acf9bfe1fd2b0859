// Copyright (c) dcp authors.
//
// Fuzz target: manifest bytes, as a reader finds them on disk. The input is a
// FlatBuffer payload; it is decoded as a commit fragment (payload only) and,
// framed the way a manifest file is, by the strict decoder loads use and the
// lenient one of dcp-inspect (which also builds the chunk index and checks
// coverage). The raw input also goes through the frame parser as a file.
// Invariants: no crash; whatever decodes satisfies the manifest invariants
// and re-encodes to bytes that decode to the same manifest.

#include <string>

#include "engine/codec/frame.h"
#include "engine/inspect/reader.h"
#include "engine/manifest/manifest.h"
#include "engine/manifest/manifest_codec.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = fuzz::Bytes(data, size);
  // FlatBuffers reads scalars in place: payloads are 8-byte aligned, as the
  // readers make them.
  const std::string payload(input);
  auto fragment = manifest::DecodeManifestPayload(payload, "fuzz fragment");
  if (fragment.ok()) {
    // A payload decodes without the invariant checks; running them must not crash.
    (void)manifest::CheckManifestInvariants(*fragment);
  }

  const std::string framed = codec::FrameBlob(manifest::kManifestMagic, manifest::kManifestFormatVersion, input);
  auto m = manifest::DecodeManifest(framed, "fuzz manifest");
  if (m.ok()) {
    FUZZ_CHECK(manifest::CheckManifestInvariants(*m).ok());
    const std::string again = manifest::EncodeManifest(*m);
    auto m2 = manifest::DecodeManifest(again, "re-encoded");
    FUZZ_CHECK(m2.ok());
    FUZZ_CHECK(manifest::EncodeManifest(*m2) == again);
  }
  auto step = inspect::DecodeStep(framed, "fuzz step");
  if (m.ok()) FUZZ_CHECK(step.ok());  // lenient accepts all the strict one does

  (void)manifest::DecodeManifest(input, "fuzz file");
  return 0;
}
