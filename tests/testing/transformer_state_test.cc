// Copyright (c) dcp authors.
//
// The synthetic transformer of the reconfiguration matrix: Megatron's
// vocabulary padding, the uneven DP slices, its refusal of layouts that do
// not fit, an in-process save and load in another layout, and a Verify that
// notices a wrong byte and a zero-padding boundary.

#include "tests/testing/transformer_state.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::synthetic {
namespace {

using testing::StatusIs;

TEST_CASE("padded vocabulary is a multiple of vocab_divisible_by * TP", "[tools][synthetic]") {
  TransformerConfig c;  // vocab 300, divisible by 128
  CHECK(PaddedVocab(c, 1) == 384);
  CHECK(PaddedVocab(c, 2) == 512);
  CHECK(PaddedVocab(c, 4) == 512);
  CHECK(PaddedVocab(c, 8) == 1024);
  c.vocab_divisible_by = 8;
  CHECK(PaddedVocab(c, 4) == 320);
  c.vocab = 320;
  CHECK(PaddedVocab(c, 4) == 320);
}

TEST_CASE("uneven slice bounds move each inner bound by one element", "[tools][synthetic]") {
  CHECK(UnevenSliceBounds(24, 2) == std::vector<int64_t>{0, 13, 24});
  CHECK(UnevenSliceBounds(16, 8) == std::vector<int64_t>{0, 3, 3, 7, 7, 11, 11, 15, 16});  // empty slices
  CHECK(UnevenSliceBounds(5, 1) == std::vector<int64_t>{0, 5});
  CHECK(UnevenSliceBounds(1, 4) == std::vector<int64_t>{0, 1, 1, 1, 1});
}

TEST_CASE("layouts that do not fit are refused", "[tools][synthetic]") {
  CHECK_THAT(TransformerState::Make({}, Layout{3, 1, 1}, 0, true).status(),
             StatusIs(StatusCode::kInvalidArgument, "layout TP3xPP1xDP1 (rank 0) does not fit hidden 16"));
  CHECK_THAT(TransformerState::Make({}, Layout{1, 3, 1}, 0, true).status(),
             StatusIs(StatusCode::kInvalidArgument, "layers 8"));
  CHECK_THAT(TransformerState::Make({}, Layout{2, 1, 1}, 2, true).status(),
             StatusIs(StatusCode::kInvalidArgument, "(rank 2)"));
}

// Saves at `from` on in-process ranks, loads at `to`; every rank's Verify.
std::vector<std::string> RoundTrip(const TransformerConfig& save_config, const Layout& from,
                                   const TransformerConfig& load_config, const Layout& to) {
  testing::TempDir dir;
  std::vector<std::string> out(static_cast<size_t>(to.world()), "not run");
  // Rank bodies assert nothing (Catch is not thread-safe): they return what
  // the caller checks.
  std::vector<Status> saved(static_cast<size_t>(from.world()));
  testing::RunRanks(from.world(), [&](int rank, Communicator* comm) {
    auto state = ValueOrDie(TransformerState::Make(save_config, from, rank, true));
    auto store = ValueOrDie(Store::Open(dir.path(), comm));
    saved[static_cast<size_t>(rank)] = store->Put(1, state->state_dict());
  });
  for (const Status& s : saved) REQUIRE_OK(s);
  std::vector<std::string> before(static_cast<size_t>(to.world()));
  testing::RunRanks(to.world(), [&](int rank, Communicator* comm) {
    auto state = ValueOrDie(TransformerState::Make(load_config, to, rank, false));
    // Before the load the buffers hold a byte pattern, not the values.
    before[static_cast<size_t>(rank)] = state->Verify(PaddedVocab(save_config, from.tp));
    auto store = ValueOrDie(Store::Open(dir.path(), comm, StoreOptions{.read_only = true}));
    auto loaded = store->Get(1, &state->state_dict());
    out[static_cast<size_t>(rank)] =
        loaded.ok() ? state->Verify(PaddedVocab(save_config, from.tp)) : loaded.status().ToString();
  });
  for (const std::string& b : before) CHECK(b != "");
  return out;
}

TEST_CASE("saved in one layout, loaded in another, bit for bit", "[tools][synthetic]") {
  TransformerConfig flat, plain;
  plain.distributed_optimizer = false;
  SECTION("flat DP slices to flat slices of another TP/PP/DP") {
    for (const std::string& s : RoundTrip(flat, Layout{2, 1, 2}, flat, Layout{1, 2, 2})) CHECK(s == "");
  }
  SECTION("flat slices to the parameters' sharding, vocabulary padded") {
    for (const std::string& s : RoundTrip(flat, Layout{1, 2, 2}, plain, Layout{4, 1, 1})) CHECK(s == "");
  }
}

TEST_CASE("Verify names the first wrong element and checks the zero padding", "[tools][synthetic]") {
  auto state = ValueOrDie(TransformerState::Make({}, Layout{2, 1, 1}, 1, true));
  const int64_t vp = state->padded_vocab();
  CHECK(vp == 512);
  CHECK(state->Verify(vp) == "");
  // Rows 300..511 of the saved padding hold values, not zeros: a load of a
  // step whose padded vocabulary was smaller would have zero-filled them.
  CHECK_THAT(state->Verify(400), Catch::Matchers::Contains("tensor 'embedding.word_embeddings.weight'"));
  StateDict& emb = state->state_dict().Child("model").Child("embedding").Child("word_embeddings");
  ShardedTensor& t = emb.tensor(emb.Find("weight"));
  static_cast<char*>(t.data.data())[2 * 3 + 1] ^= 1;  // element 3 (bfloat16) of this rank's rows
  CHECK(state->Verify(vp) == "rank 1: tensor 'embedding.word_embeddings.weight' [256:512, 0:16] differs at element 3");
}

}  // namespace
}  // namespace dcp::synthetic
