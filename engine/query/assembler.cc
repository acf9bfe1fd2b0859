// Copyright (c) dcp authors.

#include "engine/query/assembler.h"

#include <algorithm>
#include <cstring>

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

// Checks a record's header against what the manifest expects. `where` names
// the record (called only on failure).
template <typename Where>
Result<codec::ChunkHeader> CheckHeader(std::string_view record, const manifest::RecordRef& ref, const Where& where) {
  auto h = codec::ParseChunkHeader(record);
  if (!h.ok()) return h.status().Annotate(where());
  if (h->raw_size != ref.raw_size || h->checksum != ref.checksum) {
    return Status::DataLoss(where() + " does not match the manifest (raw size " + std::to_string(h->raw_size) +
                            " vs " + std::to_string(ref.raw_size) + ", checksum " + h->checksum.ToHex() + " vs " +
                            ref.checksum.ToHex() + ")");
  }
  return h;
}

// Checks the outcome `s` of reading a record (its bytes `value`) and its
// header against what the manifest expects. `subject` names the record
// (called only on failure).
template <typename Subject>
Status CheckFetched(StoreSet* stores, const Status& s, std::string_view value, const manifest::RecordRef& ref,
                    const Subject& subject, codec::ChunkHeader* header) {
  // RocksDB checks the table block's checksum (a damaged block is never
  // parsed); the header check here and the checksum of the decoded bytes
  // (DecodeChunkRecord, ReadObject) check the record against the manifest.
  if (s.IsNotFound()) {
    return Status::DataLoss(RecordWhat(subject(), ref) + " is missing: " + s.message());
  }
  if (!s.ok()) return s.Annotate(RecordWhat(subject(), ref));
  DCP_ASSIGN_OR_RETURN(*header, CheckHeader(value, ref, [&] {
                         return RecordWhat(subject(), ref) + stores->Where(ref.store_rank);
                       }));
  return Status::OK();
}

// Fetches a record and checks it (CheckFetched).
template <typename Subject>
Status Fetch(StoreSet* stores, uint64_t generation, const std::string& record_key, const manifest::RecordRef& ref,
             const Subject& subject, storage::PinnedValue* value, codec::ChunkHeader* header) {
  const Status s = stores->Get(ref.store_rank, generation, record_key, value);
  return CheckFetched(stores, s, value->view(), ref, subject, header);
}

// " (received from rank <sender>)", or nothing for sender -1: named only on
// failure (no string per received record).
std::string ReceivedFrom(int sender) {
  return sender < 0 ? std::string() : " (received from rank " + std::to_string(sender) + ")";
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
  auto subject = [&] { return ChunkSubject(read); };
  Status fault = base::CheckFaultPoint("get.read_chunk", rank);
  if (!fault.ok()) return fault.Annotate(RecordWhat(subject(), c.record));
  return Fetch(stores, generation, storage::ChunkRecordKey(c.record.generation, t.key, c.box.origin), c.record,
               subject, value, header);
}

Result<codec::ChunkHeader> CheckChunkRecord(std::string_view record, const ChunkRead& read, int sender) {
  return CheckHeader(record, read.chunk->record,
                     [&] { return RecordWhat(ChunkSubject(read), read.chunk->record) + ReceivedFrom(sender); });
}

namespace {

// Where the whole chunk goes as it is, if that is all `read` copies: its one
// region is the whole chunk and its destination contiguous host memory of
// `raw_size` bytes (the common case: a load in the saved layout). Null
// otherwise. No allocation (this runs once per record).
char* WholeChunkDestination(const ChunkRead& read, uint64_t raw_size) {
  if (read.copies.size() != 1) return nullptr;
  const CopyOut& copy = read.copies[0];
  const Shape& shape = read.chunk->box.shape;
  if (copy.src.shape != shape || !std::all_of(copy.src.origin.begin(), copy.src.origin.end(),
                                              [](int64_t o) { return o == 0; })) {
    return nullptr;
  }
  const TensorView& dest = copy.dest;
  if (!dest.device().is_host() || !dest.is_contiguous() || dest.size_bytes() != raw_size) return nullptr;
  return static_cast<char*>(dest.data());
}

// DecodeChunkRecord; `source` is called only on failure.
template <typename Source>
Status Decode(std::string_view record, const codec::ChunkHeader& h, const ChunkRead& read, const Source& source) {
  const manifest::TensorEntry& t = *read.tensor;
  const manifest::ChunkEntry& c = *read.chunk;
  auto where = [&] { return RecordWhat(ChunkSubject(read), c.record) + source(); };
  const void* bytes = nullptr;
  thread_local base::Buffer scratch;
  char* const whole_into = WholeChunkDestination(read, h.raw_size);
  if (h.codec == codec::ChunkCodec::kRaw) {
    auto payload = codec::RawChunkPayload(record, h);
    if (!payload.ok()) return payload.status().Annotate(where());
    if (whole_into != nullptr) {
      std::memcpy(whole_into, payload->data(), payload->size());
      return Status::OK();
    }
    bytes = payload->data();
  } else if (whole_into != nullptr) {
    // Decode straight into the destination.
    Status s = codec::DecodeChunk(record, h, whole_into, h.raw_size);
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

}  // namespace

Status DecodeChunkRecord(std::string_view record, const codec::ChunkHeader& h, const ChunkRead& read, int sender) {
  return Decode(record, h, read, [&] { return ReceivedFrom(sender); });
}

Status ReadChunk(StoreSet* stores, uint64_t generation, const ChunkRead& read, int rank) {
  storage::PinnedValue value;
  codec::ChunkHeader h;
  DCP_RETURN_IF_ERROR(FetchChunkRecord(stores, generation, read, rank, &value, &h));
  return Decode(value.view(), h, read, [&] { return stores->Where(read.chunk->record.store_rank); });
}

namespace {

// Records smaller than kRunRecord are read in runs of up to kRunBytes or
// kRunRecords; larger ones one by one (the kernel reads ahead).
constexpr uint64_t kRunRecord = 1 << 20;
constexpr uint64_t kRunBytes = 1 << 20;
constexpr size_t kRunRecords = 256;

}  // namespace

std::vector<TaskRange> SplitIntoTasks(size_t n, uint64_t max_inflight_bytes,
                                      const std::function<uint64_t(size_t)>& stored,
                                      const std::function<bool(size_t)>& joins) {
  const uint64_t run_bytes = std::min<uint64_t>(kRunBytes, std::max<uint64_t>(max_inflight_bytes, 1) / 4);
  std::vector<TaskRange> ranges;
  for (size_t i = 0; i < n;) {
    TaskRange r{i, i};
    const bool single = stored(i) >= kRunRecord;
    do {
      const uint64_t bytes = stored(r.end);
      if (r.end > r.begin && (!joins(r.end) || bytes >= kRunRecord || r.stored + bytes > run_bytes ||
                              r.end - r.begin >= kRunRecords)) {
        break;
      }
      r.stored += bytes;
      ++r.end;
    } while (!single && r.end < n);
    // A run reads ahead its bytes (its records are usually contiguous), plus
    // a block's worth of slack for the table's own bytes between them.
    if (!single) r.readahead = std::max<uint64_t>(r.stored + (16 << 10), 64 << 10);
    i = r.end;
    ranges.push_back(r);
  }
  return ranges;
}

std::vector<ReadTask> PlanReadTasks(std::vector<const ChunkRead*> reads, uint64_t max_inflight_bytes) {
  struct Item {
    const ChunkRead* read;
    std::string key;
  };
  std::vector<Item> items;
  items.reserve(reads.size());
  for (const ChunkRead* read : reads) {
    const manifest::RecordRef& ref = read->chunk->record;
    items.push_back({read, storage::ChunkRecordKey(ref.generation, read->tensor->key, read->chunk->box.origin)});
  }
  reads.clear();
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    const uint32_t ra = a.read->chunk->record.store_rank, rb = b.read->chunk->record.store_rank;
    return ra != rb ? ra < rb : a.key < b.key;
  });
  const std::vector<TaskRange> ranges = SplitIntoTasks(
      items.size(), max_inflight_bytes, [&](size_t i) { return items[i].read->chunk->record.stored_size; },
      [&](size_t i) {
        return items[i].read->chunk->record.store_rank == items[i - 1].read->chunk->record.store_rank;
      });
  std::vector<ReadTask> tasks(ranges.size());
  for (size_t t = 0; t < ranges.size(); ++t) {
    ReadTask& task = tasks[t];
    for (size_t i = ranges[t].begin; i < ranges[t].end; ++i) {
      const manifest::RecordRef& ref = items[i].read->chunk->record;
      task.reads.push_back(items[i].read);
      task.keys.push_back(std::move(items[i].key));
      task.cost += ref.stored_size + ref.raw_size;
    }
    task.stored = ranges[t].stored;
    task.readahead = ranges[t].readahead;
  }
  return tasks;
}

Status ExecuteReadTask(StoreSet* stores, uint64_t generation, const ReadTask& task, int rank,
                       const RecordDone& done) {
  if (task.reads.empty()) return Status::OK();
  const uint32_t store = task.reads.front()->chunk->record.store_rank;
  auto where = [&] { return stores->Where(store); };
  if (task.readahead == 0) {
    const ChunkRead& read = *task.reads.front();
    storage::PinnedValue value;
    codec::ChunkHeader h;
    DCP_RETURN_IF_ERROR(FetchChunkRecord(stores, generation, read, rank, &value, &h));
    DCP_RETURN_IF_ERROR(Decode(value.view(), h, read, where));
    if (done) done(0, value.view());
    return Status::OK();
  }
  return stores->ReadRun(store, generation, task.keys, task.readahead,
                         [&](size_t i, const Status& s, std::string_view value) {
                           const ChunkRead& read = *task.reads[i];
                           const manifest::RecordRef& ref = read.chunk->record;
                           auto subject = [&] { return ChunkSubject(read); };
                           Status fault = base::CheckFaultPoint("get.read_chunk", rank);
                           if (!fault.ok()) return fault.Annotate(RecordWhat(subject(), ref));
                           codec::ChunkHeader h;
                           DCP_RETURN_IF_ERROR(CheckFetched(stores, s, value, ref, subject, &h));
                           DCP_RETURN_IF_ERROR(Decode(value, h, read, where));
                           if (done) done(i, value);
                           return Status::OK();
                         });
}

Status ExecuteReadPlan(StoreSet* stores, uint64_t generation, const ReadPlan& plan, const LoadOptions& options,
                       int rank, base::ThreadPool* shared_pool) {
  if (plan.reads.empty()) return Status::OK();
  std::vector<const ChunkRead*> reads;
  reads.reserve(plan.reads.size());
  for (const ChunkRead& r : plan.reads) reads.push_back(&r);
  const uint64_t limit = std::max<uint64_t>(options.max_inflight_bytes, 1);
  const std::vector<ReadTask> tasks = PlanReadTasks(std::move(reads), limit);

  std::unique_ptr<base::ThreadPool> own_pool;
  base::ThreadPool* pool = base::SharedOrOwn(
      shared_pool, std::min<int>(base::ResolveThreadCount(options.read_threads), static_cast<int>(tasks.size())),
      &own_pool);
  base::ByteBudget budget(limit);
  base::TaskGroup group(pool);
  for (const ReadTask& task : tasks) {
    budget.Acquire(task.cost);
    if (group.failed()) {
      budget.Release(task.cost);
      break;
    }
    group.Run([&, task = &task] {
      Status s = ExecuteReadTask(stores, generation, *task, rank);
      budget.Release(task->cost);
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
                            object.record, [&] { return subject; }, &value, &h));
  out->resize(h.raw_size);
  return codec::DecodeChunk(value.view(), h, out->data(), out->size())
      .Annotate(RecordWhat(subject, object.record) + stores->Where(object.record.store_rank));
}

}  // namespace dcp::query
