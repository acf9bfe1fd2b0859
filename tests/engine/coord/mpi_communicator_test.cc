// Copyright (c) dcp authors.
// Tests of engine/coord/mpi_communicator.cc, run under `mpirun -np 4`.
//
// Every rank runs every test case, in declaration order, so each test case is
// collective: it issues the same collectives on every rank, whatever happened
// before, and asserts only afterwards with CHECK (a REQUIRE that threw on one
// rank would leave the others waiting in the next collective).

#define CATCH_CONFIG_RUNNER
#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dcp/mpi.h"
#include "engine/coord/agreement.h"
#include "engine/protocol/commit.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "tests/engine/coord/collective_payloads.h"
#include "tests/testing/status_matchers.h"

namespace dcp {
namespace {

using dcp::testing::Expected;
using dcp::testing::Payload;
using dcp::testing::SizeFor;
using dcp::testing::StatusIs;

// The world communicator, created in main() after MPI is initialized.
std::unique_ptr<Communicator> g_world;

TEST_CASE("MPI world communicator: rank and size", "[mpi]") {
  Communicator* c = g_world.get();
  int world_rank = -1, world_size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  CHECK(c->rank() == world_rank);
  CHECK(c->size() == world_size);
  CHECK(c->size() >= 2);
}

TEST_CASE("MPI Broadcast from every root, empty and large", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  for (int root = 0; root < n; ++root) {
    std::string b = me == root ? Payload(root, -1, 0, 100 + static_cast<size_t>(root)) : "junk";
    CHECK_OK(c->Broadcast(root, &b));
    CHECK(b == Payload(root, -1, 0, 100 + static_cast<size_t>(root)));
    std::string e = me == root ? "" : "not empty";
    CHECK_OK(c->Broadcast(root, &e));
    CHECK(e.empty());
  }
  std::string big = me == n - 1 ? Payload(9, 9, 9, (16 << 20) + 5) : "";
  CHECK_OK(c->Broadcast(n - 1, &big));
  CHECK(big == Payload(9, 9, 9, (16 << 20) + 5));
}

TEST_CASE("MPI AllGather of uneven and empty payloads", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  std::vector<std::string> all = {"stale"};
  CHECK_OK(c->AllGather(Payload(me, -1, 1, SizeFor(me, 0)), &all));
  CHECK(all == Expected(n, [](int r) { return Payload(r, -1, 1, SizeFor(r, 0)); }));

  CHECK_OK(c->AllGather("", &all));
  CHECK(all == std::vector<std::string>(static_cast<size_t>(n)));

  const size_t big = (4 << 20) + static_cast<size_t>(me);
  CHECK_OK(c->AllGather(Payload(me, 1, 1, big), &all));
  CHECK(all == Expected(n, [](int r) { return Payload(r, 1, 1, (4 << 20) + static_cast<size_t>(r)); }));
}

TEST_CASE("MPI Gather to every root", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  for (int root = 0; root < n; ++root) {
    std::vector<std::string> all = {"stale"};
    CHECK_OK(c->Gather(root, Payload(me, root, 2, SizeFor(me, root)), &all));
    if (me == root) {
      CHECK(all == Expected(n, [root](int r) { return Payload(r, root, 2, SizeFor(r, root)); }));
    } else {
      CHECK(all.empty());
    }
  }
  std::vector<std::string> empties;
  CHECK_OK(c->Gather(0, "", &empties));
  if (me == 0) CHECK(empties == std::vector<std::string>(static_cast<size_t>(n)));
}

TEST_CASE("MPI AllToAll of uneven and empty messages", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  std::vector<std::string> send;
  for (int to = 0; to < n; ++to) send.push_back(Payload(me, to, 3, SizeFor(me, to)));
  std::vector<std::string> recv = {"stale"};
  CHECK_OK(c->AllToAll(send, &recv));
  CHECK(recv == Expected(n, [me](int from) { return Payload(from, me, 3, SizeFor(from, me)); }));

  CHECK_OK(c->AllToAll(std::vector<std::string>(static_cast<size_t>(n)), &recv));
  CHECK(recv == std::vector<std::string>(static_cast<size_t>(n)));

  // A wrong message count is refused before any MPI call, on every rank.
  CHECK_THAT(c->AllToAll({"one"}, &recv), StatusIs(StatusCode::kInvalidArgument, "one message per rank"));
}

TEST_CASE("MPI Barrier", "[mpi]") {
  // Rank 0 writes a file after the first barrier; every rank sees it after the second.
  Communicator* c = g_world.get();
  std::string path = c->rank() == 0 ? std::filesystem::temp_directory_path().string() + "/dcp-mpi-barrier-" +
                                          std::to_string(::getpid())
                                    : "";
  CHECK_OK(c->Broadcast(0, &path));
  CHECK_OK(c->Barrier());
  if (c->rank() == 0) std::fclose(std::fopen(path.c_str(), "w"));
  CHECK_OK(c->Barrier());
  CHECK(std::filesystem::exists(path));
  CHECK_OK(c->Barrier());
  if (c->rank() == 0) std::filesystem::remove(path);
}

TEST_CASE("MPI Duplicate: an independent channel, usable from another thread", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  auto dup = c->Duplicate();
  CHECK_OK(dup.status());
  if (!dup.ok()) return;  // every rank fails alike: MPI_Comm_dup is collective
  CHECK((*dup)->rank() == me);
  CHECK((*dup)->size() == n);

  int provided = 0;
  MPI_Query_thread(&provided);
  std::vector<std::string> dup_all, main_all;
  Status dup_status, main_status;
  if (provided == MPI_THREAD_MULTIPLE) {
    std::thread background([&] {
      for (int i = 0; i < 10 && dup_status.ok(); ++i)
        dup_status = (*dup)->AllGather("dup " + std::to_string(me), &dup_all);
    });
    for (int i = 0; i < 10 && main_status.ok(); ++i)
      main_status = c->AllGather("main " + std::to_string(me), &main_all);
    background.join();
  } else {
    WARN("MPI granted thread level " << provided << "; the duplicate runs on the main thread");
    dup_status = (*dup)->AllGather("dup " + std::to_string(me), &dup_all);
    main_status = c->AllGather("main " + std::to_string(me), &main_all);
  }
  CHECK_OK(dup_status);
  CHECK_OK(main_status);
  CHECK(dup_all == Expected(n, [](int r) { return "dup " + std::to_string(r); }));
  CHECK(main_all == Expected(n, [](int r) { return "main " + std::to_string(r); }));
  std::string b = me == 0 ? "via dup" : "";
  CHECK_OK((*dup)->Broadcast(0, &b));
  CHECK(b == "via dup");
}

TEST_CASE("MPI communicator from a Fortran handle", "[mpi]") {
  const int n = g_world->size(), me = g_world->rank();
  auto c = NewMpiCommunicatorFromFortranHandle(MPI_Comm_c2f(MPI_COMM_WORLD));
  CHECK_OK(c.status());
  if (!c.ok()) return;
  std::vector<std::string> all;
  CHECK_OK((*c)->AllGather(std::to_string(me), &all));
  CHECK(all == Expected(n, [](int r) { return std::to_string(r); }));
}

TEST_CASE("AgreeOnStatus over MPI", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  CHECK_OK(coord::AgreeOnStatus(c, Status::OK()));
  const Status one = coord::AgreeOnStatus(c, me == n - 1 ? Status::IOError("disk full") : Status::OK());
  CHECK(one == Status::IOError("rank " + std::to_string(n - 1) + ": disk full"));
  const Status all = coord::AgreeOnStatus(c, Status::InvalidArgument("same everywhere"));
  CHECK(all == Status::InvalidArgument("same everywhere"));
}

TEST_CASE("CommitStep over MPI publishes once every rank succeeded", "[mpi]") {
  Communicator* c = g_world.get();
  const int n = c->size(), me = c->rank();
  std::string root =
      c->rank() == 0 ? std::filesystem::temp_directory_path().string() + "/dcp-mpi-commit-" + std::to_string(::getpid())
                     : "";
  CHECK_OK(c->Broadcast(0, &root));
  Status created;
  if (me == 0) created = storage::CreateOrCheckStoreRoot(root);
  CHECK_OK(coord::AgreeOnStatus(c, created));

  protocol::CommitRequest req;
  req.root = root;
  if (me == 0) {
    req.skeleton.step = 3;
    req.skeleton.generation = 9;
    req.skeleton.world_size = static_cast<uint32_t>(n);
    manifest::TensorEntry t;
    t.key = "v";
    t.dtype = DType::kUInt8;
    t.global_shape = {n};
    req.skeleton.tensors.push_back(t);
  }
  manifest::StepManifest fragment;
  manifest::TensorEntry mine;
  mine.key = "v";
  mine.dtype = DType::kUInt8;
  mine.global_shape = {n};
  manifest::ChunkEntry chunk;
  chunk.box = Box{{me}, {1}};
  chunk.record.store_rank = static_cast<uint32_t>(me);
  chunk.record.raw_size = 1;
  chunk.record.stored_size = 64;
  mine.chunks.push_back(chunk);
  fragment.tensors.push_back(mine);

  // First a failing rank: nothing is published, every rank hears why.
  const Status failed = protocol::CommitStep(c, req, me == 1 ? Status::DataLoss("broken") : Status::OK(), fragment);
  CHECK(failed == Status::DataLoss("rank 1: broken"));
  CHECK_FALSE(storage::StepExists(root, 3));
  CHECK_OK(c->Barrier());

  const Status ok = protocol::CommitStep(c, req, Status::OK(), fragment);
  CHECK_OK(ok);
  CHECK(storage::StepExists(root, 3));
  auto bytes = storage::ReadManifestFile(root, 3);
  CHECK_OK(bytes.status());
  if (bytes.ok()) {
    auto m = manifest::DecodeManifest(*bytes, root);
    CHECK_OK(m.status());
    if (m.ok()) {
      CHECK(m->tensors.size() == 1);
      CHECK(m->FindTensor("v") != nullptr);
      if (m->FindTensor("v")) CHECK(m->FindTensor("v")->chunks.size() == static_cast<size_t>(n));
    }
  }
  CHECK_OK(c->Barrier());
  if (me == 0) std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace dcp

int main(int argc, char** argv) {
  auto runtime = dcp::MpiRuntime::Init(&argc, &argv);
  if (!runtime.ok()) {
    std::fprintf(stderr, "%s\n", runtime.status().ToString().c_str());
    return 1;
  }
  auto world = dcp::NewMpiWorldCommunicator();
  if (!world.ok()) {
    std::fprintf(stderr, "%s\n", world.status().ToString().c_str());
    return 1;
  }
  dcp::g_world = std::move(world).value();
  const int result = Catch::Session().run(argc, argv);
  // A rank whose assertions failed exits non-zero, which fails the mpirun.
  dcp::g_world.reset();
  return result;
}
