// Copyright (c) dcp authors.
// Tests of engine/coord/agreement.cc: agreeing on one Status across ranks.

#include "engine/coord/agreement.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"

namespace dcp::coord {
namespace {

using dcp::testing::RunRanks;
using dcp::testing::StatusIs;

TEST_CASE("CombineStatuses: all OK is OK", "[coord]") {
  CHECK_OK(CombineStatuses({}));
  CHECK_OK(CombineStatuses({Status::OK()}));
  CHECK_OK(CombineStatuses(std::vector<Status>(8)));
}

TEST_CASE("CombineStatuses: one failing rank is named", "[coord]") {
  std::vector<Status> s(4);
  s[2] = Status::DataLoss("chunk 'w' at [0:4] is corrupt");
  const Status c = CombineStatuses(s);
  CHECK(c.code() == StatusCode::kDataLoss);
  CHECK(c.message() == "rank 2: chunk 'w' at [0:4] is corrupt");
  s[2] = Status::OK();
  s[0] = Status::NotFound("x");
  CHECK(CombineStatuses(s).message() == "rank 0: x");
}

TEST_CASE("CombineStatuses: an error every rank computed is returned as is", "[coord]") {
  const Status err = Status::InvalidArgument("shards of 'w' overlap at [0:2]");
  CHECK(CombineStatuses(std::vector<Status>(5, err)) == err);
  CHECK(CombineStatuses({err}) == err);
}

TEST_CASE("CombineStatuses: several failures show the lowest rank and the count", "[coord]") {
  std::vector<Status> s(6);
  s[4] = Status::IOError("disk full on rank 4");
  s[1] = Status::NotFound("missing on rank 1");
  s[5] = Status::IOError("disk full on rank 5");
  const Status c = CombineStatuses(s);
  CHECK(c.code() == StatusCode::kNotFound);
  CHECK(c.message() == "rank 1: missing on rank 1 (3 ranks failed; the lowest is shown)");

  // Identical failures on some ranks only still name the lowest one.
  std::vector<Status> some(4);
  some[1] = some[3] = Status::IOError("same");
  CHECK(CombineStatuses(some) == Status::IOError("rank 1: same (2 ranks failed; the lowest is shown)"));

  // Every rank failed, but not identically.
  std::vector<Status> all(3, Status::IOError("same"));
  all[2] = Status::IOError("other");
  CHECK(CombineStatuses(all) == Status::IOError("rank 0: same (3 ranks failed; the lowest is shown)"));
  // Same message, different codes: not identical.
  all[2] = Status::DataLoss("same");
  CHECK(CombineStatuses(all) == Status::IOError("rank 0: same (3 ranks failed; the lowest is shown)"));
}

TEST_CASE("AgreeOnStatus returns the same status on every rank", "[coord]") {
  const int n = GENERATE(1, 2, 4, 8);
  INFO(n << " ranks");
  struct Round {
    std::vector<Status> local;
    Status expected;
  };
  std::vector<Round> rounds;
  rounds.push_back({std::vector<Status>(static_cast<size_t>(n)), Status::OK()});
  {
    std::vector<Status> one(static_cast<size_t>(n));
    one[static_cast<size_t>(n - 1)] = Status::IOError("cannot write");
    rounds.push_back({one, n == 1 ? Status::IOError("cannot write")
                                  : Status::IOError("rank " + std::to_string(n - 1) + ": cannot write")});
  }
  rounds.push_back({std::vector<Status>(static_cast<size_t>(n), Status::InvalidArgument("global error")),
                    Status::InvalidArgument("global error")});
  if (n >= 4) {
    std::vector<Status> several(static_cast<size_t>(n));
    for (int r = 1; r < n; r += 2)
      several[static_cast<size_t>(r)] = Status::DataLoss("bad record " + std::to_string(r));
    rounds.push_back({several, Status::DataLoss("rank 1: bad record 1 (" + std::to_string(n / 2) +
                                                " ranks failed; the lowest is shown)")});
  }

  std::vector<std::vector<Status>> agreed(static_cast<size_t>(n));
  RunRanks(n, [&](int rank, Communicator* comm) {
    for (const Round& round : rounds) {
      agreed[static_cast<size_t>(rank)].push_back(AgreeOnStatus(comm, round.local[static_cast<size_t>(rank)]));
    }
  });
  for (int rank = 0; rank < n; ++rank) {
    REQUIRE(agreed[static_cast<size_t>(rank)].size() == rounds.size());
    for (size_t i = 0; i < rounds.size(); ++i) {
      INFO("rank " << rank << ", round " << i);
      CHECK(agreed[static_cast<size_t>(rank)][i] == rounds[i].expected);
    }
  }
}

TEST_CASE("AgreeAndGather: every rank's payload, also when the agreement fails", "[coord]") {
  const int n = 3;
  std::vector<Status> agreed(static_cast<size_t>(n));
  std::vector<std::vector<std::string>> payloads(static_cast<size_t>(n));
  RunRanks(n, [&](int rank, Communicator* comm) {
    const size_t i = static_cast<size_t>(rank);
    const Status local = rank == 1 ? Status::IOError("disk full") : Status::OK();
    agreed[i] = AgreeAndGather(comm, local, "from " + std::to_string(rank), &payloads[i]);
  });
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    CHECK(agreed[i] == Status::IOError("rank 1: disk full"));
    // The failed agreement still names what each rank sent (put names the
    // step by rank 0's).
    CHECK(payloads[i] == std::vector<std::string>{"from 0", "from 1", "from 2"});
  }
}

TEST_CASE("AgreeOnCall: a rank whose call differs fails every rank by name", "[coord]") {
  const int n = 3;
  std::vector<Status> agreed(static_cast<size_t>(n));
  RunRanks(n, [&](int rank, Communicator* comm) {
    const size_t i = static_cast<size_t>(rank);
    agreed[i] = AgreeOnCall(comm, Status::OK(), rank == 2 ? "DeleteStep(4)" : "DeleteStep(3)", "delete");
  });
  for (const Status& s : agreed) {
    CHECK(s == Status::InvalidArgument(
                   "rank 2 calls DeleteStep(4) but rank 0 DeleteStep(3): every rank must make the same call"));
  }
  // The same calls: the agreed status, annotated.
  RunRanks(n, [&](int rank, Communicator* comm) {
    const size_t i = static_cast<size_t>(rank);
    agreed[i] = AgreeOnCall(comm, rank == 1 ? Status::NotFound("no step 3") : Status::OK(), "DeleteStep(3)",
                            "delete of step 3");
  });
  for (const Status& s : agreed) CHECK(s == Status::NotFound("delete of step 3: rank 1: no step 3"));
}

TEST_CASE("Ranks in two different agreements all fail with the same error, and stay in step", "[coord]") {
  // Two different calls of the API at once (PutPart on one rank, a put or a
  // garbage collection on the others) meet in an all-gather: each side reads
  // the other's message as its own would be a hang or a silent mix-up.
  const int n = 3;
  for (int odd = 0; odd < n; ++odd) {
    INFO("rank " << odd << " calls PutPart");
    std::vector<Status> agreed(static_cast<size_t>(n));
    std::vector<Status> after(static_cast<size_t>(n));
    RunRanks(n, [&](int rank, Communicator* comm) {
      const size_t i = static_cast<size_t>(rank);
      std::vector<std::string> payloads;
      if (rank == odd) agreed[i] = AgreeOnCall(comm, Status::OK(), "PutPart", "put");
      else if (rank % 2 == 0) agreed[i] = AgreeOnStatus(comm, Status::OK());
      else agreed[i] = AgreeAndGather(comm, Status::OK(), "signature", &payloads);
      after[i] = AgreeOnStatus(comm, rank == 1 ? Status::IOError("later") : Status::OK());
    });
    const std::string first = odd == 0 ? "rank 1 makes another collective call but rank 0 calls PutPart"
                                       : "rank " + std::to_string(odd) +
                                             " calls PutPart but rank 0 makes another collective call";
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      INFO("rank " << i);
      CHECK(agreed[i] == Status::InvalidArgument(first + ": every rank must make the same call"));
      CHECK(after[i] == Status::IOError("rank 1: later"));
    }
  }
}

TEST_CASE("Status agreements named by different calls all fail with the same error, and stay in step", "[coord]") {
  // A put on some ranks, an async put on the others: both start with a
  // status agreement, each named by its call.
  const int n = 3;
  for (int odd = 0; odd < n; ++odd) {
    INFO("rank " << odd << " calls PutAsync");
    std::vector<Status> agreed(static_cast<size_t>(n));
    std::vector<Status> unnamed(static_cast<size_t>(n));
    std::vector<Status> after(static_cast<size_t>(n));
    std::vector<std::vector<std::string>> payloads(static_cast<size_t>(n));
    RunRanks(n, [&](int rank, Communicator* comm) {
      const size_t i = static_cast<size_t>(rank);
      if (rank == odd) agreed[i] = AgreeAndGather(comm, Status::OK(), "step 7", &payloads[i], "put", "PutAsync");
      else agreed[i] = AgreeAndGather(comm, Status::OK(), "step 7", &payloads[i], "put", "Put");
      // A later round (no name) meets a first round of any call: the limit.
      unnamed[i] = AgreeOnStatus(comm, Status::OK(), {}, rank == odd ? "Put" : "");
      after[i] = AgreeOnStatus(comm, rank == 1 ? Status::IOError("later") : Status::OK());
    });
    const std::string first = odd == 0 ? "rank 1 calls Put but rank 0 calls PutAsync"
                                       : "rank " + std::to_string(odd) + " calls PutAsync but rank 0 calls Put";
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      INFO("rank " << i);
      CHECK(agreed[i] == Status::InvalidArgument(first + ": every rank must make the same call"));
      CHECK(payloads[i].empty());
      CHECK_OK(unnamed[i]);
      CHECK(after[i] == Status::IOError("rank 1: later"));
    }
  }
}

TEST_CASE("BroadcastResult gives every rank the root's status or payload", "[coord]") {
  const int n = GENERATE(1, 3);
  for (int root = 0; root < n; ++root) {
    std::vector<Result<std::string>> got(static_cast<size_t>(n), Status::Internal("not run"));
    RunRanks(n, [&](int rank, Communicator* comm) {
      // Non-roots pass garbage: it is ignored.
      Result<std::string> mine = rank == root ? Result<std::string>(std::string("pay\0load", 8))
                                              : Result<std::string>(Status::IOError("ignored"));
      got[static_cast<size_t>(rank)] = BroadcastResult(comm, root, std::move(mine));
    });
    for (const auto& g : got) {
      REQUIRE_OK(g.status());
      CHECK(*g == std::string("pay\0load", 8));
    }
    RunRanks(n, [&](int rank, Communicator* comm) {
      got[static_cast<size_t>(rank)] =
          BroadcastResult(comm, root, rank == root ? Result<std::string>(Status::NotFound("no such step"))
                                                   : Result<std::string>(std::string("ignored")));
    });
    for (const auto& g : got) CHECK(g.status() == Status::NotFound("no such step"));
  }
}

}  // namespace
}  // namespace dcp::coord
