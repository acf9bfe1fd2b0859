// Copyright (c) dcp authors.

#include "engine/query/record_check.h"

#include "engine/codec/chunk_codec.h"

namespace dcp::query {

void RecordCheck::AddWritten(uint32_t rank, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  written_.emplace(rank, generation);
}

bool RecordCheck::Usable(StoreSet* stores, uint64_t step_generation, const manifest::RecordRef& ref,
                         const std::string& record_key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (written_.count({ref.store_rank, ref.generation}) || verified_.count({ref.store_rank, record_key})) {
      return true;
    }
  }
  storage::PinnedValue value;
  if (!stores->Get(ref.store_rank, step_generation, record_key, &value, /*fill_cache=*/false).ok()) return false;
  auto header = codec::ParseChunkHeader(value.view());
  if (!header.ok() || header->raw_size != ref.raw_size || header->checksum != ref.checksum ||
      header->record_size() != ref.stored_size) {
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  verified_.emplace(ref.store_rank, record_key);
  return true;
}

}  // namespace dcp::query
