// Copyright (c) dcp authors.

#include "engine/query/live_records.h"

#include "engine/store/key_layout.h"

namespace dcp::query {

void AddLiveRecords(const manifest::StepManifest& m, const std::function<bool(uint32_t rank)>& wanted,
                    std::map<uint32_t, storage::LiveRecords>* live) {
  for (const auto& t : m.tensors) {
    for (const auto& c : t.chunks) {
      if (wanted && !wanted(c.record.store_rank)) continue;
      (*live)[c.record.store_rank][c.record.generation].emplace(
          storage::ChunkRecordKey(c.record.generation, t.key, c.box.origin), c.record.stored_size);
    }
  }
  for (const auto& o : m.objects) {
    if (wanted && !wanted(o.record.store_rank)) continue;
    (*live)[o.record.store_rank][o.record.generation].emplace(
        storage::ObjectRecordKey(o.record.generation, o.unique_key()), o.record.stored_size);
  }
}

}  // namespace dcp::query
