// Copyright (c) dcp authors.

#include "tests/engine/protocol/protocol_fixture.h"

#include <stdexcept>

namespace dcp::protocol {

void RunOnStore(const std::string& root, int ranks,
                const std::function<void(int rank, Communicator* comm, StoreContext* store)>& fn,
                const StoreOptions& options,
                const std::function<storage::RankStoreBackend*(int rank)>& backend_of) {
  testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
    auto store = OpenStore(comm, root, options, backend_of ? backend_of(rank) : storage::DefaultBackend());
    if (!store.ok()) throw std::runtime_error("rank " + std::to_string(rank) + ": " + store.status().ToString());
    fn(rank, comm, store->get());
  });
}

}  // namespace dcp::protocol
