// Copyright (c) dcp authors.
// Tests of engine/protocol/store_context.cc: what the open protocol learns
// about the ranks besides the store.

#include "engine/protocol/store_context.h"

#include <catch2/catch.hpp>

#include <atomic>

#include "engine/base/thread_pool.h"
#include "tests/engine/protocol/protocol_fixture.h"
#include "tests/testing/temp_dir.h"

namespace dcp::protocol {
namespace {

TEST_CASE("OpenStore counts the ranks on this host, and the pools share its cores among them", "[protocol]") {
  for (int ranks : {1, 3}) {
    testing::TempDir dir;
    std::atomic<int> checked{0};
    RunOnStore(dir.path(), ranks, [&](int, Communicator*, StoreContext* store) {
      // In-process ranks all run on this host.
      CHECK(store->ranks_on_host() == ranks);
      CHECK(store->WritePool(0)->size() == base::ResolveThreadCount(0, ranks));
      CHECK(store->ReadPool(0)->size() == base::ResolveThreadCount(0, ranks));
      CHECK(store->WritePool(7)->size() == 7);
      ++checked;
    });
    CHECK(checked == ranks);
  }
}

}  // namespace
}  // namespace dcp::protocol
