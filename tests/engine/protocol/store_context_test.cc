// Copyright (c) dcp authors.
// Tests of engine/protocol/store_context.cc: what the open protocol learns
// about the ranks besides the store.

#include "engine/protocol/store_context.h"

#include <catch2/catch.hpp>

#include <vector>

#include "engine/base/thread_pool.h"
#include "tests/engine/protocol/protocol_fixture.h"
#include "tests/testing/temp_dir.h"

namespace dcp::protocol {
namespace {

TEST_CASE("OpenStore counts the ranks on this host, and the pools share its cores among them", "[protocol]") {
  for (int ranks : {1, 3}) {
    testing::TempDir dir;
    // What each rank saw, checked here: Catch2's assertions are not for the
    // ranks' threads.
    std::vector<int> on_host(ranks, -1), write_threads(ranks, -1), read_threads(ranks, -1), asked(ranks, -1);
    RunOnStore(dir.path(), ranks, [&](int rank, Communicator*, StoreContext* store) {
      on_host[rank] = store->ranks_on_host();
      write_threads[rank] = store->WritePool(0)->size();
      read_threads[rank] = store->ReadPool(0)->size();
      asked[rank] = store->WritePool(7)->size();
    });
    for (int r = 0; r < ranks; ++r) {
      INFO("rank " << r << " of " << ranks);
      CHECK(on_host[r] == ranks);  // in-process ranks all run on this host
      CHECK(write_threads[r] == base::ResolveThreadCount(0, ranks));
      CHECK(read_threads[r] == base::ResolveThreadCount(0, ranks));
      CHECK(asked[r] == 7);
    }
  }
}

}  // namespace
}  // namespace dcp::protocol
