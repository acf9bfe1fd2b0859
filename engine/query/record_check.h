// Copyright (c) dcp authors.
//
// RecordCheck: may an incremental put reference a record of a committed step?
//
// An incremental put does not rewrite a chunk whose bytes equal a chunk of
// the base step: the new manifest references the base's record. A reference
// to a record that is missing (a deleted rank store, a table file lost to a
// repair) or damaged (a flipped bit) would make the new step unloadable, so
// a record is referenced only if it is known present and intact:
//   * this process wrote its generation into this rank store (records are
//     intact when written: Commit checks the table file), or
//   * it was read back once: RocksDB verifies its table block's checksum,
//     and its header must match what the manifest says (size, XXH3-128).
// The first put after a process starts therefore reads the base records it
// would reference once; later puts of the same process reference the
// records it wrote or checked without reading them. Damage that happens to
// an already checked record while the process runs is found by the loads
// (and dcp-inspect verify), not here.
//
// Thread safety: all methods may be called concurrently.

#ifndef DCP_ENGINE_QUERY_RECORD_CHECK_H_
#define DCP_ENGINE_QUERY_RECORD_CHECK_H_

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "engine/manifest/manifest.h"
#include "engine/query/store_set.h"

namespace dcp::query {

class RecordCheck {
 public:
  // Records of `generation` in rank store `rank` were written by this process.
  void AddWritten(uint32_t rank, uint64_t generation);

  // True if the record `record_key` that `ref` describes, referenced by a
  // step whose manifest has `step_generation`, may be referenced again; reads
  // it through `stores` if it has to.
  bool Usable(StoreSet* stores, uint64_t step_generation, const manifest::RecordRef& ref,
              const std::string& record_key);

 private:
  std::mutex mu_;
  std::set<std::pair<uint32_t, uint64_t>> written_;       // guarded by mu_
  std::set<std::pair<uint32_t, std::string>> verified_;  // guarded by mu_
};

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_RECORD_CHECK_H_
