// Copyright (c) dcp authors.

#include "engine/query/assembler.h"

#include <algorithm>

#include "engine/array/box.h"
#include "engine/array/strided_copy.h"
#include "engine/base/buffer.h"
#include "engine/base/fault_injection.h"
#include "engine/base/thread_pool.h"
#include "engine/codec/chunk_codec.h"
#include "engine/cuda/device.h"
#include "engine/store/key_layout.h"
#include "engine/store/rank_store.h"

namespace dcp::query {
namespace {

std::string RecordWhat(const std::string& subject, const manifest::RecordRef& r) {
  return subject + " in rank store " + std::to_string(r.store_rank);
}

// Checks a record's header against what the manifest expects.
Result<codec::ChunkHeader> CheckHeader(std::string_view record, const manifest::RecordRef& ref,
                                       const std::string& where) {
  auto h = codec::ParseChunkHeader(record);
  if (!h.ok()) return h.status().Annotate(where);
  if (h->raw_size != ref.raw_size || h->checksum != ref.checksum) {
    return Status::DataLoss(where + " does not match the manifest (raw size " + std::to_string(h->raw_size) +
                            " vs " + std::to_string(ref.raw_size) + ", checksum " + h->checksum.ToHex() + " vs " +
                            ref.checksum.ToHex() + ")");
  }
  return h;
}

// Fetches a record and checks its header against what the manifest expects.
Status Fetch(StoreSet* stores, uint64_t generation, const std::string& record_key, const manifest::RecordRef& ref,
             const std::string& subject, storage::PinnedValue* value, codec::ChunkHeader* header) {
  // RocksDB checks the table block's checksum (a damaged block is never
  // parsed); the header check here and the checksum of the decoded bytes
  // (DecodeChunkRecord, ReadObject) check the record against the manifest.
  Status s = stores->Get(ref.store_rank, generation, record_key, value);
  if (s.IsNotFound()) {
    return Status::DataLoss(RecordWhat(subject, ref) + " is missing: " + s.message());
  }
  DCP_RETURN_IF_ERROR(s.Annotate(RecordWhat(subject, ref)));
  DCP_ASSIGN_OR_RETURN(*header,
                       CheckHeader(value->view(), ref, RecordWhat(subject, ref) + stores->Where(ref.store_rank)));
  return Status::OK();
}

// The chunk's bytes seen as a contiguous array of the chunk's shape.
TensorView ChunkView(const void* data, const manifest::TensorEntry& t, const manifest::ChunkEntry& c) {
  return TensorView(data, t.dtype, c.box.shape);
}

}  // namespace

std::string ChunkSubject(const ChunkRead& read) {
  return "tensor '" + read.tensor->key + "' chunk at offset " + ShapeToString(read.chunk->box.origin);
}

Status FetchChunkRecord(StoreSet* stores, uint64_t generation, const ChunkRead& read, int rank,
                        storage::PinnedValue* value, codec::ChunkHeader* header) {
  const manifest::TensorEntry& t = *read.tensor;
  const manifest::ChunkEntry& c = *read.chunk;
  const std::string subject = ChunkSubject(read);
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("get.read_chunk", rank).Annotate(RecordWhat(subject, c.record)));
  return Fetch(stores, generation, storage::ChunkRecordKey(c.record.generation, t.key, c.box.origin), c.record,
               subject, value, header);
}

Result<codec::ChunkHeader> CheckChunkRecord(std::string_view record, const ChunkRead& read,
                                            const std::string& source) {
  return CheckHeader(record, read.chunk->record, RecordWhat(ChunkSubject(read), read.chunk->record) + source);
}

Status DecodeChunkRecord(std::string_view record, const codec::ChunkHeader& h, const ChunkRead& read,
                         const std::string& source) {
  const manifest::TensorEntry& t = *read.tensor;
  const manifest::ChunkEntry& c = *read.chunk;
  auto where = [&] { return RecordWhat(ChunkSubject(read), c.record) + source; };
  const void* bytes = nullptr;
  thread_local base::Buffer scratch;
  if (h.codec == codec::ChunkCodec::kRaw) {
    auto payload = codec::RawChunkPayload(record, h);
    if (!payload.ok()) return payload.status().Annotate(where());
    bytes = payload->data();
  } else if (read.copies.size() == 1 && read.copies[0].src == array::BoxOfShape(c.box.shape) &&
             read.copies[0].dest.is_contiguous() && read.copies[0].dest.device().is_host()) {
    // Decode straight into the destination.
    Status s = codec::DecodeChunk(record, h, read.copies[0].dest.data(), h.raw_size);
    return s.ok() ? s : s.Annotate(where());
  } else {
    scratch.Resize(h.raw_size);
    Status s = codec::DecodeChunk(record, h, scratch.data(), h.raw_size);
    if (!s.ok()) return s.Annotate(where());
    bytes = scratch.data();
  }
  const TensorView whole = ChunkView(bytes, t, c);
  for (const CopyOut& copy : read.copies) {
    if (copy.dest.device().is_host()) {
      array::CopyView(whole.Slice(copy.src), copy.dest);
      continue;
    }
    // Device destination: pack the region into pinned memory, then host -> device.
    thread_local cuda::PinnedBuffer pinned;
    thread_local cuda::Stream stream;
    const TensorView region = whole.Slice(copy.src);
    DCP_RETURN_IF_ERROR(pinned.Reserve(region.size_bytes()));
    array::PackView(region, pinned.data());
    DCP_RETURN_IF_ERROR(cuda::CopyToDevice(pinned.data(), copy.dest, &stream).Annotate(ChunkSubject(read)));
  }
  return Status::OK();
}

Status ReadChunk(StoreSet* stores, uint64_t generation, const ChunkRead& read, int rank) {
  storage::PinnedValue value;
  codec::ChunkHeader h;
  DCP_RETURN_IF_ERROR(FetchChunkRecord(stores, generation, read, rank, &value, &h));
  return DecodeChunkRecord(value.view(), h, read, stores->Where(read.chunk->record.store_rank));
}

Status ExecuteReadPlan(StoreSet* stores, uint64_t generation, const ReadPlan& plan, const LoadOptions& options,
                       int rank, base::ThreadPool* shared_pool) {
  if (plan.reads.empty()) return Status::OK();
  std::unique_ptr<base::ThreadPool> own_pool;
  base::ThreadPool* pool = base::SharedOrOwn(
      shared_pool,
      std::min<int>(base::ResolveThreadCount(options.read_threads), static_cast<int>(plan.reads.size())),
      &own_pool);
  base::ByteBudget budget(std::max<uint64_t>(options.max_inflight_bytes, 1));
  base::TaskGroup group(pool);
  for (const ChunkRead& read : plan.reads) {
    const uint64_t cost = read.chunk->record.stored_size + read.chunk->record.raw_size;
    budget.Acquire(cost);
    if (group.failed()) {
      budget.Release(cost);
      break;
    }
    group.Run([&, cost] {
      Status s = ReadChunk(stores, generation, read, rank);
      budget.Release(cost);
      return s;
    });
  }
  return group.Wait();
}

Status ReadObject(StoreSet* stores, uint64_t generation, const manifest::ObjectEntry& object, std::string* out) {
  const std::string subject = "object '" + object.unique_key() + "'";
  storage::PinnedValue value;
  codec::ChunkHeader h;
  DCP_RETURN_IF_ERROR(Fetch(stores, generation, storage::ObjectRecordKey(object.record.generation, object.unique_key()),
                            object.record, subject, &value, &h));
  out->resize(h.raw_size);
  return codec::DecodeChunk(value.view(), h, out->data(), out->size())
      .Annotate(RecordWhat(subject, object.record) + stores->Where(object.record.store_rank));
}

}  // namespace dcp::query
