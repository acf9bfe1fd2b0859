// Copyright (c) dcp authors.
//
// The RocksDB rank store backend (DefaultBackend()): one RocksDB instance per
// rank. The only code in dcp that includes RocksDB (rocksdb_rank_store.cc);
// rocksdb::Status is translated there, and every message names the rank and
// the path.
//
// Writes go in bulk: a BulkWriter builds a table file (SstFileWriter) from
// records added in increasing key order, and Commit() ingests it into the
// database (the file is linked in, fsynced, and the database's MANIFEST
// synced), so after Commit() returns the records are durable and visible.
// This is one sequential pass over the bytes, close to a raw write; there is
// no write-ahead log and no memtable on this path.
//
// Reads: a writer's own instance serves its reads. Other processes (and other
// ranks) open a store as a RocksDB secondary instance, which keeps every table
// file open (so files removed later by the writer stay readable) and catches
// up with the writer on demand (CatchUp) when a newer step is requested.
//
// Damage: RocksDB opened for writing creates a new, empty database where
// CURRENT is missing and deletes every table file its MANIFEST does not list,
// which on a damaged store would destroy every earlier step's records. So a
// writer first checks the metadata with a read-only instance that changes
// nothing (CheckMetadata: CURRENT names a MANIFEST that reads back whole, and
// every table file it lists exists and its footer, index and properties
// verify); a damaged store is repaired or refused, and table files the
// metadata does not list are moved to quarantine/ rather than handed to
// RocksDB. Repair deletes nothing: table files in quarantine/ come back; a
// missing or damaged CURRENT is pointed at the newest MANIFEST that lists
// every table file; failing that, the database is rebuilt from every table
// file that reads back whole, and what cannot be used (old MANIFESTs, logs,
// unreadable table files) moves to lost/. A reader that finds a record
// missing can fall back to a salvage instance (kSalvage) that serves the
// table files that are there. RocksDB's info log (LOG) is never written; its
// warnings and errors go to dcp's log sink. A writer opens a rank store only
// under the store's writer lock (store_lock.h): another writer's table file,
// linked but not yet recorded, would otherwise be set aside.
//
// DropGeneration deletes a generation's table files outright where RocksDB
// allows (not in level 0); anything left is deleted with a range tombstone
// and compacted away.
//
// Values are read pinned in their table block (no copy); blocks pass through
// a small process-wide cache, whose buffers are recycled rather than
// reallocated, so a chunk read costs one read of its block and no page faults.

#ifndef DCP_ENGINE_STORE_ROCKSDB_RANK_STORE_H_
#define DCP_ENGINE_STORE_ROCKSDB_RANK_STORE_H_

#include "engine/store/rank_store.h"

namespace dcp::storage {

// The RocksDB backend; the same object as DefaultBackend(). Never deleted.
RankStoreBackend* RocksDbBackend();

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_ROCKSDB_RANK_STORE_H_
