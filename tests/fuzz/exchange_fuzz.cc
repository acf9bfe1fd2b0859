// Copyright (c) dcp authors.
//
// Fuzz target: what ranks send each other during a put, as a rank receives it
// from a peer it cannot trust to be well-formed (a different build, a bug,
// corrupted memory). The first input byte picks the message:
//   0  a rank's declaration (round 2 of the declaration exchange)
//   1  a replica signature (round 1)
//   2  a commit message (a rank's status and fragment; protocol/commit.h)
//   3  a whole declaration exchange: up to 8 ranks' (signature, message) pairs
//   4  commit fragments merged into a skeleton manifest
// Invariants: no crash; a declaration that decodes re-encodes to the same
// bytes' meaning (its re-encoding decodes and encodes identically).

#include <string>
#include <vector>

#include "engine/protocol/commit.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/manifest/manifest_codec.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

namespace {

// Splits `in` into length-prefixed pieces (u16 little-endian lengths).
std::vector<std::string> Pieces(std::string_view in, size_t max_pieces) {
  std::vector<std::string> out;
  while (out.size() < max_pieces && in.size() >= 2) {
    const size_t n = static_cast<uint8_t>(in[0]) | (static_cast<size_t>(static_cast<uint8_t>(in[1])) << 8);
    in.remove_prefix(2);
    out.emplace_back(in.substr(0, n));
    in.remove_prefix(std::min(n, in.size()));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string rest(fuzz::Bytes(data + 1, size - 1));  // aligned copy (FlatBuffers)
  switch (mode % 5) {
    case 0: {
      auto d = manifest::DecodeRankDecl(rest, 3);
      if (d.ok()) {
        const std::string again = manifest::EncodeRankDecl(*d);
        auto d2 = manifest::DecodeRankDecl(again, 3);
        FUZZ_CHECK(d2.ok());
        FUZZ_CHECK(manifest::EncodeRankDecl(*d2) == again);
      }
      break;
    }
    case 1: {
      auto s = manifest::DecodeSignature(rest, 1);
      if (s.ok()) FUZZ_CHECK(manifest::EncodeSignature(*s) == rest);
      break;
    }
    case 2: {
      Status s;
      std::string_view payload;
      if (protocol::DecodeCommitMessage(rest, 5, &s, &payload).ok() && s.ok()) {
        // A fragment merged into an empty skeleton: every tensor is undeclared.
        (void)protocol::MergeFragments(manifest::StepManifest(), {payload});
      }
      break;
    }
    case 3: {
      const std::vector<std::string> pieces = Pieces(rest, 16);
      std::vector<manifest::ReplicaSignature> signatures;
      std::vector<std::string> messages;
      for (size_t i = 0; i + 1 < pieces.size(); i += 2) {
        auto s = manifest::DecodeSignature(pieces[i], static_cast<int>(i / 2));
        if (!s.ok()) return 0;
        signatures.push_back(*s);
        messages.push_back(pieces[i + 1]);
      }
      if (signatures.empty()) return 0;
      auto global = manifest::AssembleGlobalDecls(signatures, messages);
      if (global.ok()) {
        FUZZ_CHECK(global->ranks.size() == messages.size());
        (void)manifest::ExpandGlobalDecls(*global);
      }
      break;
    }
    case 4: {
      std::vector<std::string> pieces = Pieces(rest, 9);
      if (pieces.empty()) return 0;
      auto skeleton = manifest::DecodeManifestPayload(pieces[0], "fuzz skeleton");
      if (!skeleton.ok()) return 0;
      std::vector<std::string_view> fragments(pieces.begin() + 1, pieces.end());
      (void)protocol::MergeFragments(*skeleton, fragments);
      break;
    }
  }
  return 0;
}
