// Copyright (c) dcp authors.
//
// Every on-disk name and record-key layout of a dcp store, in one place.
// Nothing else in dcp concatenates paths under the root or record keys.
//
// Directory layout of a store root:
//
//   DCP_STORE                              marker: "dcp-store <format>\n"
//   LOCK                                   the writer's lock (flock), naming its holder
//   LATEST                                 the most recently committed step
//   steps/<step, 20 digits>.manifest       published step manifests
//   steps/.tmp.<step>.<generation>         manifests being published
//   steps/<step, 20 digits>.damaged        the step lost data (a repair found
//                                          records missing or corrupt): why,
//                                          as text; loads refuse the step
//   ranks/rank-<r, 5 digits>/              RocksDB instance of writer rank r
//   ranks/rank-<r>/ingest/                 table files being built for ingestion
//   ranks/rank-<r>/quarantine/             table files the rank store's RocksDB
//                                          metadata does not list, set aside
//                                          (never deleted) when a writer opens it
//   ranks/rank-<r>/lost/                   files a repair set aside (old RocksDB
//                                          metadata, unreadable table files):
//                                          kept, never read
//   ranks/rank-<r>/rebuild/                table files of a repair in progress
//
// Record keys inside a rank store (RocksDB, bytewise order):
//
//   <generation, 16 hex>/c/<tensor key>@<origin, decimal, comma separated>
//   <generation, 16 hex>/o/<object unique key>
//   <generation, 16 hex>/x/<part, decimal>     generation index: a framed blob
//                                              (magic "DCPGENIX") listing, one
//                                              per line, the record keys that
//                                              part of the put wrote
//
// The generation is unique per Put, so a step that is rewritten (overwrite)
// never touches the records of the step it replaces. It comes first, so all
// records of one put form one contiguous key range (and every table file
// holds one generation): garbage collection drops or compacts a generation
// without touching any other. Tensor keys may contain '@': the origin follows
// the last one. Manifests do not store record keys; they store (generation,
// key, origin) and the key is derived here.
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_STORE_KEY_LAYOUT_H_
#define DCP_ENGINE_STORE_KEY_LAYOUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dcp/status.h"
#include "dcp/types.h"

namespace dcp::storage {

constexpr uint32_t kStoreFormatVersion = 1;

std::string MarkerPath(std::string_view root);
std::string MarkerContents();
// The format version in a marker file's contents; DataLoss if malformed.
Result<uint32_t> ParseMarker(std::string_view contents);

std::string LockPath(std::string_view root);
std::string LatestPath(std::string_view root);
std::string LatestTempPath(std::string_view root, uint64_t generation);

std::string StepsDir(std::string_view root);
std::string ManifestPath(std::string_view root, uint64_t step);
std::string ManifestTempPath(std::string_view root, uint64_t step, uint64_t generation);
std::string DamagedMarkerPath(std::string_view root, uint64_t step);
std::string DamagedMarkerTempPath(std::string_view root, uint64_t step);
// The step of a manifest file name ("00000000000000000042.manifest"), or
// nullopt for any other name (temporaries included).
std::optional<uint64_t> ParseManifestFileName(std::string_view name);

std::string RanksDir(std::string_view root);
std::string RankStorePath(std::string_view root, uint32_t rank);
// The rank of a rank store directory name ("rank-00003" -> 3), or nullopt
// for any other name.
std::optional<uint32_t> ParseRankStoreName(std::string_view name);
std::string RankIngestDir(std::string_view rank_store_path);
std::string RankQuarantineDir(std::string_view rank_store_path);
std::string RankLostDir(std::string_view rank_store_path);
std::string RankRebuildDir(std::string_view rank_store_path);
// Table files are "<number>.sst" (RocksDB's names and the ingestion files'
// "<name>.sst").
bool IsTableFileName(std::string_view name);
// The table file a bulk writer named `name` writes before ingestion:
// "<rank store>/ingest/<name>.sst". A put's part is named "put-<generation>-<part>".
std::string IngestFilePath(std::string_view rank_store_path, std::string_view name);
std::string PutIngestName(uint64_t generation, uint32_t part);
// The copy a repair makes of what reads back from a damaged table file.
std::string RebuiltTableFilePath(std::string_view table_file_path);

// The scratch directory RocksDB secondary instances (readers) require. They
// write nothing there (no info log); it is private to the user
// ("$TMPDIR/dcp-secondary-<uid>", mode 0700), so two users' jobs never share it.
std::string SecondaryScratchDir();

std::string ChunkRecordKey(uint64_t generation, std::string_view tensor_key, const Shape& origin);
std::string ObjectRecordKey(uint64_t generation, std::string_view unique_key);
std::string GenerationIndexKey(uint64_t generation, uint32_t part);
constexpr char kGenerationIndexMagic[] = "DCPGENIX";

// The key range [begin, end) holding every record of `generation` (chunks
// 'c', then objects 'o', then the index 'x', which a put writes last).
std::pair<std::string, std::string> GenerationRange(uint64_t generation);

// The generation a key belongs to: any key that starts with 16 hex digits
// followed by '/' (a record) or '0' (the end of a generation's range, as a
// range deletion's bound). nullopt otherwise.
std::optional<uint64_t> GenerationOfKey(std::string_view key);

struct ParsedRecordKey {
  enum class Kind { kChunk, kObject, kGenerationIndex } kind = Kind::kChunk;
  uint64_t generation = 0;
  std::string key;  // tensor key or object unique key (index: the part number)
  Shape origin;     // chunks only
};
// InvalidArgument if `record_key` is not a dcp record key.
Result<ParsedRecordKey> ParseRecordKey(std::string_view record_key);

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_KEY_LAYOUT_H_
