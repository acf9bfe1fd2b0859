// Copyright (c) dcp authors.
// Tests of engine/coord/local_communicator.cc: in-process rank groups.
//
// Rank bodies run on their own threads and only record what they saw; the
// assertions run after RunRanks returns (Catch2 is not thread-safe).

#include "engine/coord/local_communicator.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/engine/coord/collective_payloads.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"

namespace dcp {
namespace {

using dcp::testing::Payload;
using dcp::testing::RunRanks;
using dcp::testing::SizeFor;
using dcp::testing::StatusIs;

TEST_CASE("Local communicators report rank and size", "[coord]") {
  auto comms = NewLocalCommunicators(3);
  REQUIRE(comms.size() == 3);
  for (int r = 0; r < 3; ++r) {
    CHECK(comms[static_cast<size_t>(r)]->rank() == r);
    CHECK(comms[static_cast<size_t>(r)]->size() == 3);
  }
  auto self = NewSelfCommunicator();
  CHECK(self->rank() == 0);
  CHECK(self->size() == 1);
}

TEST_CASE("A self communicator runs every collective alone", "[coord]") {
  auto self = NewSelfCommunicator();
  CHECK_OK(self->Barrier());
  std::string b = "x";
  CHECK_OK(self->Broadcast(0, &b));
  CHECK(b == "x");
  std::vector<std::string> all;
  CHECK_OK(self->AllGather("mine", &all));
  CHECK(all == std::vector<std::string>{"mine"});
  CHECK_OK(self->Gather(0, "g", &all));
  CHECK(all == std::vector<std::string>{"g"});
  CHECK_OK(self->AllToAll({"to me"}, &all));
  CHECK(all == std::vector<std::string>{"to me"});
  auto dup = ValueOrDie(self->Duplicate());
  CHECK(dup->size() == 1);
  CHECK_OK(dup->AllGather("dup", &all));
  CHECK(all == std::vector<std::string>{"dup"});
}

TEST_CASE("Collectives move the right bytes between ranks", "[coord]") {
  const int n = GENERATE(1, 2, 4, 8);
  INFO(n << " ranks");

  struct Seen {
    std::vector<Status> statuses;
    std::vector<std::string> broadcast;        // per root
    std::vector<std::string> broadcast_empty;  // per root
    std::vector<std::string> allgather;
    std::vector<std::vector<std::string>> gather;  // per root
    std::vector<std::string> alltoall;
    std::string big;
  };
  std::vector<Seen> seen(static_cast<size_t>(n));
  const std::string big = Payload(1, 2, 3, (4 << 20) + 3);

  RunRanks(n, [&](int rank, Communicator* comm) {
    Seen& s = seen[static_cast<size_t>(rank)];
    for (int root = 0; root < n; ++root) {
      std::string b = rank == root ? Payload(root, -1, 0, 100 + static_cast<size_t>(root)) : "junk to be replaced";
      s.statuses.push_back(comm->Broadcast(root, &b));
      s.broadcast.push_back(b);
      std::string e = rank == root ? "" : "not empty";
      s.statuses.push_back(comm->Broadcast(root, &e));
      s.broadcast_empty.push_back(e);
    }
    s.big = rank == n - 1 ? big : "";
    s.statuses.push_back(comm->Broadcast(n - 1, &s.big));

    s.statuses.push_back(comm->AllGather(Payload(rank, -1, 1, SizeFor(rank, 0)), &s.allgather));

    for (int root = 0; root < n; ++root) {
      std::vector<std::string> g = {"stale"};
      s.statuses.push_back(comm->Gather(root, Payload(rank, root, 2, SizeFor(rank, root)), &g));
      s.gather.push_back(g);
    }

    std::vector<std::string> send;
    for (int to = 0; to < n; ++to) send.push_back(Payload(rank, to, 3, SizeFor(rank, to)));
    s.alltoall = {"stale"};
    s.statuses.push_back(comm->AllToAll(send, &s.alltoall));
    s.statuses.push_back(comm->Barrier());
  });

  for (int rank = 0; rank < n; ++rank) {
    INFO("rank " << rank);
    const Seen& s = seen[static_cast<size_t>(rank)];
    for (const Status& st : s.statuses) CHECK_OK(st);
    for (int root = 0; root < n; ++root) {
      CHECK(s.broadcast[static_cast<size_t>(root)] == Payload(root, -1, 0, 100 + static_cast<size_t>(root)));
      CHECK(s.broadcast_empty[static_cast<size_t>(root)].empty());
      const auto& g = s.gather[static_cast<size_t>(root)];
      if (rank == root) {
        REQUIRE(g.size() == static_cast<size_t>(n));
        for (int from = 0; from < n; ++from)
          CHECK(g[static_cast<size_t>(from)] == Payload(from, root, 2, SizeFor(from, root)));
      } else {
        CHECK(g.empty());
      }
    }
    CHECK(s.big == big);
    REQUIRE(s.allgather.size() == static_cast<size_t>(n));
    for (int from = 0; from < n; ++from) {
      CHECK(s.allgather[static_cast<size_t>(from)] == Payload(from, -1, 1, SizeFor(from, 0)));
    }
    REQUIRE(s.alltoall.size() == static_cast<size_t>(n));
    for (int from = 0; from < n; ++from) {
      CHECK(s.alltoall[static_cast<size_t>(from)] == Payload(from, rank, 3, SizeFor(from, rank)));
    }
  }
}

TEST_CASE("Barrier holds every rank until all have arrived", "[coord]") {
  const int n = GENERATE(1, 2, 4, 8);
  constexpr int kRounds = 50;
  std::atomic<int> arrived{0};
  std::vector<std::vector<int>> seen(static_cast<size_t>(n));
  RunRanks(n, [&](int rank, Communicator* comm) {
    for (int round = 1; round <= kRounds; ++round) {
      arrived.fetch_add(1);
      const bool ok = comm->Barrier().ok();
      // Everyone has arrived for this round, and no one can have arrived for
      // the next one before this rank leaves the second barrier below.
      seen[static_cast<size_t>(rank)].push_back(ok ? arrived.load() : -1);
      if (!comm->Barrier().ok()) seen[static_cast<size_t>(rank)].push_back(-1);
    }
  });
  for (int rank = 0; rank < n; ++rank) {
    INFO("rank " << rank);
    REQUIRE(seen[static_cast<size_t>(rank)].size() == static_cast<size_t>(kRounds));
    for (int round = 1; round <= kRounds; ++round) CHECK(seen[static_cast<size_t>(rank)][round - 1] == n * round);
  }
}

TEST_CASE("Many back-to-back collectives of different kinds stay in step", "[coord]") {
  const int n = GENERATE(2, 4, 8);
  constexpr int kRounds = 200;
  std::vector<int> errors(static_cast<size_t>(n), 0);
  RunRanks(n, [&](int rank, Communicator* comm) {
    int& err = errors[static_cast<size_t>(rank)];
    for (int round = 0; round < kRounds; ++round) {
      std::vector<std::string> all;
      switch (round % 4) {
        case 0: {
          if (!comm->AllGather(Payload(rank, 0, round, 3), &all).ok()) ++err;
          for (int r = 0; r < n; ++r) err += all[static_cast<size_t>(r)] != Payload(r, 0, round, 3);
          break;
        }
        case 1: {
          const int root = round % n;
          std::string b = rank == root ? Payload(root, 1, round, 5) : "";
          if (!comm->Broadcast(root, &b).ok()) ++err;
          err += b != Payload(root, 1, round, 5);
          break;
        }
        case 2: {
          std::vector<std::string> send;
          for (int to = 0; to < n; ++to) send.push_back(Payload(rank, to, round, 2));
          if (!comm->AllToAll(send, &all).ok()) ++err;
          for (int r = 0; r < n; ++r) err += all[static_cast<size_t>(r)] != Payload(r, rank, round, 2);
          break;
        }
        default: {
          const int root = (round / 4) % n;
          if (!comm->Gather(root, Payload(rank, 2, round, 4), &all).ok()) ++err;
          if (rank == root) {
            for (int r = 0; r < n; ++r) err += all[static_cast<size_t>(r)] != Payload(r, 2, round, 4);
          } else {
            err += !all.empty();
          }
        }
      }
    }
  });
  CHECK(errors == std::vector<int>(static_cast<size_t>(n), 0));
}

TEST_CASE("A duplicate is an independent channel over the same ranks", "[coord]") {
  const int n = GENERATE(1, 2, 4, 8);
  struct Seen {
    int dup_rank = -1;
    int dup_size = -1;
    Status status;
    std::vector<std::string> main_gather;
    std::vector<std::string> dup_gather;
    std::vector<std::string> dup2_alltoall;
    std::string dup_broadcast;
  };
  std::vector<Seen> seen(static_cast<size_t>(n));
  RunRanks(n, [&](int rank, Communicator* comm) {
    Seen& s = seen[static_cast<size_t>(rank)];
    auto dup = comm->Duplicate();
    if (!dup.ok()) {
      s.status = dup.status();
      return;
    }
    auto dup2 = (*dup)->Duplicate();  // a duplicate of a duplicate
    if (!dup2.ok()) {
      s.status = dup2.status();
      return;
    }
    s.dup_rank = (*dup)->rank();
    s.dup_size = (*dup)->size();
    // The duplicate runs on a second thread while this thread uses the
    // original: the two streams of collectives must not mix.
    Status dup_status;
    std::thread background([&] {
      for (int i = 0; i < 20 && dup_status.ok(); ++i)
        dup_status = (*dup)->AllGather("dup " + std::to_string(rank), &s.dup_gather);
      if (dup_status.ok()) {
        s.dup_broadcast = rank == 0 ? "from dup root" : "";
        dup_status = (*dup)->Broadcast(0, &s.dup_broadcast);
      }
    });
    Status main_status;
    for (int i = 0; i < 20 && main_status.ok(); ++i) {
      main_status = comm->AllGather("main " + std::to_string(rank), &s.main_gather);
    }
    background.join();
    std::vector<std::string> send;
    for (int to = 0; to < n; ++to) send.push_back(std::to_string(rank) + ">" + std::to_string(to));
    Status dup2_status = (*dup2)->AllToAll(send, &s.dup2_alltoall);
    s.status = !main_status.ok() ? main_status : !dup_status.ok() ? dup_status : dup2_status;
  });
  for (int rank = 0; rank < n; ++rank) {
    INFO("rank " << rank);
    const Seen& s = seen[static_cast<size_t>(rank)];
    CHECK_OK(s.status);
    CHECK(s.dup_rank == rank);
    CHECK(s.dup_size == n);
    REQUIRE(s.main_gather.size() == static_cast<size_t>(n));
    REQUIRE(s.dup_gather.size() == static_cast<size_t>(n));
    REQUIRE(s.dup2_alltoall.size() == static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      CHECK(s.main_gather[static_cast<size_t>(r)] == "main " + std::to_string(r));
      CHECK(s.dup_gather[static_cast<size_t>(r)] == "dup " + std::to_string(r));
      CHECK(s.dup2_alltoall[static_cast<size_t>(r)] == std::to_string(r) + ">" + std::to_string(rank));
    }
    CHECK(s.dup_broadcast == "from dup root");
  }
}

TEST_CASE("Bad arguments are refused on every rank without a hang", "[coord]") {
  const int n = 4;
  std::vector<Status> bcast(n), gather(n), alltoall(n), after(n);
  std::vector<std::vector<std::string>> after_all(n);
  RunRanks(n, [&](int rank, Communicator* comm) {
    std::string b = "x";
    bcast[static_cast<size_t>(rank)] = comm->Broadcast(n, &b);
    std::vector<std::string> out;
    gather[static_cast<size_t>(rank)] = comm->Gather(-1, "x", &out);
    alltoall[static_cast<size_t>(rank)] = comm->AllToAll({"only one"}, &out);
    // The group is still usable.
    after[static_cast<size_t>(rank)] = comm->AllGather(std::to_string(rank), &after_all[static_cast<size_t>(rank)]);
  });
  for (int rank = 0; rank < n; ++rank) {
    CHECK_THAT(bcast[static_cast<size_t>(rank)], StatusIs(StatusCode::kInvalidArgument, "broadcast root out of range"));
    CHECK_THAT(gather[static_cast<size_t>(rank)], StatusIs(StatusCode::kInvalidArgument, "gather root out of range"));
    CHECK_THAT(alltoall[static_cast<size_t>(rank)],
               StatusIs(StatusCode::kInvalidArgument, "all-to-all needs one message per rank"));
    CHECK_OK(after[static_cast<size_t>(rank)]);
    CHECK(after_all[static_cast<size_t>(rank)] == std::vector<std::string>{"0", "1", "2", "3"});
  }
}

}  // namespace
}  // namespace dcp
