// Copyright (c) dcp authors.

#include "engine/store/key_layout.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include "engine/base/file.h"

namespace dcp::storage {
namespace {

constexpr char kMarkerName[] = "DCP_STORE";
constexpr char kMarkerPrefix[] = "dcp-store ";
constexpr char kManifestSuffix[] = ".manifest";

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

std::string Dec20(uint64_t v) {
  char buf[21];
  std::snprintf(buf, sizeof(buf), "%020" PRIu64, v);
  return buf;
}

// Digits only (lowercase for base 16), as this file writes them: strtoull
// alone would also take leading blanks, a sign or "0x", so that a name which
// is not ours could parse to a step or key that names another file or record.
bool ParseU64(std::string_view s, int base, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    const bool digit = (c >= '0' && c <= '9') || (base == 16 && c >= 'a' && c <= 'f');
    if (!digit) return false;
  }
  std::string tmp(s);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(tmp.c_str(), &end, base);
  if (errno != 0 || end != tmp.c_str() + tmp.size()) return false;
  *out = v;
  return true;
}

}  // namespace

std::string MarkerPath(std::string_view root) { return base::JoinPath(root, kMarkerName); }

std::string MarkerContents() { return std::string(kMarkerPrefix) + std::to_string(kStoreFormatVersion) + "\n"; }

Result<uint32_t> ParseMarker(std::string_view contents) {
  const std::string_view prefix(kMarkerPrefix);
  if (contents.substr(0, prefix.size()) != prefix) return Status::DataLoss("store marker is malformed");
  std::string_view rest = contents.substr(prefix.size());
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
  uint64_t v = 0;
  if (!ParseU64(rest, 10, &v) || v > UINT32_MAX) return Status::DataLoss("store marker has a malformed version");
  return static_cast<uint32_t>(v);
}

std::string LockPath(std::string_view root) { return base::JoinPath(root, "LOCK"); }

std::string LatestPath(std::string_view root) { return base::JoinPath(root, "LATEST"); }

std::string LatestTempPath(std::string_view root, uint64_t generation) {
  return base::JoinPath(root, ".tmp.LATEST." + Hex16(generation));
}

std::string StepsDir(std::string_view root) { return base::JoinPath(root, "steps"); }

std::string ManifestPath(std::string_view root, uint64_t step) {
  return base::JoinPath(StepsDir(root), Dec20(step) + kManifestSuffix);
}

std::string ManifestTempPath(std::string_view root, uint64_t step, uint64_t generation) {
  return base::JoinPath(StepsDir(root), ".tmp." + Dec20(step) + "." + Hex16(generation));
}

std::string DamagedMarkerPath(std::string_view root, uint64_t step) {
  return base::JoinPath(StepsDir(root), Dec20(step) + ".damaged");
}

std::string DamagedMarkerTempPath(std::string_view root, uint64_t step) {
  return base::JoinPath(StepsDir(root), ".tmp." + Dec20(step) + ".damaged");
}

std::optional<uint64_t> ParseManifestFileName(std::string_view name) {
  const std::string_view suffix(kManifestSuffix);
  if (name.size() != 20 + suffix.size() || name.substr(20) != suffix) return std::nullopt;
  uint64_t step = 0;
  if (!ParseU64(name.substr(0, 20), 10, &step)) return std::nullopt;
  return step;
}

std::string RanksDir(std::string_view root) { return base::JoinPath(root, "ranks"); }

std::string RankStorePath(std::string_view root, uint32_t rank) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "rank-%05u", rank);
  return base::JoinPath(RanksDir(root), buf);
}

std::optional<uint32_t> ParseRankStoreName(std::string_view name) {
  constexpr std::string_view kPrefix = "rank-";
  uint64_t rank = 0;
  if (name.size() < kPrefix.size() + 5 || name.substr(0, kPrefix.size()) != kPrefix ||
      !ParseU64(name.substr(kPrefix.size()), 10, &rank) || rank > UINT32_MAX) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(rank);
}

std::string RankIngestDir(std::string_view rank_store_path) { return base::JoinPath(rank_store_path, "ingest"); }

std::string RankQuarantineDir(std::string_view rank_store_path) {
  return base::JoinPath(rank_store_path, "quarantine");
}

std::string RankLostDir(std::string_view rank_store_path) { return base::JoinPath(rank_store_path, "lost"); }

std::string RankRebuildDir(std::string_view rank_store_path) { return base::JoinPath(rank_store_path, "rebuild"); }

bool IsTableFileName(std::string_view name) { return name.size() > 4 && name.substr(name.size() - 4) == ".sst"; }

std::string IngestFilePath(std::string_view rank_store_path, std::string_view name) {
  return base::JoinPath(RankIngestDir(rank_store_path), std::string(name) + ".sst");
}

std::string PutIngestName(uint64_t generation, uint32_t part) {
  return "put-" + std::to_string(generation) + "-" + std::to_string(part);
}

std::string RebuiltTableFilePath(std::string_view table_file_path) {
  return std::string(table_file_path) + ".rebuilt.sst";
}

std::string SecondaryScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/dcp-secondary-" + std::to_string(::getuid());
}

std::string ChunkRecordKey(uint64_t generation, std::string_view tensor_key, const Shape& origin) {
  std::string k = Hex16(generation) + "/c/";
  k.append(tensor_key);
  k.push_back('@');
  for (size_t i = 0; i < origin.size(); ++i) {
    if (i) k.push_back(',');
    k += std::to_string(origin[i]);
  }
  return k;
}

std::string ObjectRecordKey(uint64_t generation, std::string_view unique_key) {
  std::string k = Hex16(generation) + "/o/";
  k.append(unique_key);
  return k;
}

std::string GenerationIndexKey(uint64_t generation, uint32_t part) {
  return Hex16(generation) + "/x/" + std::to_string(part);
}

std::pair<std::string, std::string> GenerationRange(uint64_t generation) {
  std::string prefix = Hex16(generation) + "/";
  std::string end = prefix;
  end.back() = '/' + 1;  // the byte after '/': every key with the prefix sorts below
  return {std::move(prefix), std::move(end)};
}

std::optional<uint64_t> GenerationOfKey(std::string_view key) {
  uint64_t g = 0;
  if (key.size() < 17 || (key[16] != '/' && key[16] != '0') || !ParseU64(key.substr(0, 16), 16, &g)) {
    return std::nullopt;
  }
  return g;
}

Result<ParsedRecordKey> ParseRecordKey(std::string_view rk) {
  auto bad = [&] { return Status::InvalidArgument("'" + std::string(rk) + "' is not a dcp record key"); };
  if (rk.size() < 20 || rk[16] != '/' || rk[18] != '/') return bad();
  ParsedRecordKey p;
  if (rk[17] == 'c') p.kind = ParsedRecordKey::Kind::kChunk;
  else if (rk[17] == 'o') p.kind = ParsedRecordKey::Kind::kObject;
  else if (rk[17] == 'x') p.kind = ParsedRecordKey::Kind::kGenerationIndex;
  else return bad();
  if (!ParseU64(rk.substr(0, 16), 16, &p.generation)) return bad();
  std::string_view rest = rk.substr(19);
  if (p.kind != ParsedRecordKey::Kind::kChunk) {
    p.key = std::string(rest);
    return p;
  }
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos || at == 0) return bad();
  p.key = std::string(rest.substr(0, at));
  std::string_view coords = rest.substr(at + 1);
  while (!coords.empty()) {
    const size_t comma = coords.find(',');
    uint64_t v = 0;
    if (!ParseU64(coords.substr(0, comma), 10, &v) || v > static_cast<uint64_t>(INT64_MAX)) return bad();
    p.origin.push_back(static_cast<int64_t>(v));
    if (comma == std::string_view::npos) break;
    coords.remove_prefix(comma + 1);
    if (coords.empty()) return bad();
  }
  return p;
}

}  // namespace dcp::storage
