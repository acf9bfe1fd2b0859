// Copyright (c) dcp authors.
// Tests of engine/store/catalog.cc: the store root, its marker and the step manifests.

#include "engine/store/catalog.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/codec/frame.h"
#include "engine/store/key_layout.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::storage {
namespace {

namespace fs = std::filesystem;
using dcp::testing::StatusIs;
using dcp::testing::TempDir;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

// Manifests are framed blobs (ReadManifestFile checks the frame's size).
std::string Framed(const std::string& payload) { return codec::FrameBlob(codec::kManifestFrameMagic, 1, payload); }

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_CASE("CreateOrCheckStoreRoot creates a missing root", "[store]") {
  TempDir tmp;
  const std::string root = tmp.Sub("a/b/store");
  CHECK_THAT(CheckStoreRoot(root), StatusIs(StatusCode::kNotFound, "store root '" + root + "' does not exist"));
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  CHECK(ReadText(MarkerPath(root)) == MarkerContents());
  CHECK(fs::is_directory(StepsDir(root)));
  CHECK(fs::is_directory(RanksDir(root)));
  CHECK(Entries(root) == std::vector<std::string>{"DCP_STORE", "ranks", "steps"});
  CHECK_OK(CheckStoreRoot(root));
  // Opening an existing store again is OK and changes nothing.
  CHECK_OK(CreateOrCheckStoreRoot(root));
  CHECK(Entries(root) == std::vector<std::string>{"DCP_STORE", "ranks", "steps"});
}

TEST_CASE("CreateOrCheckStoreRoot adopts an empty directory", "[store]") {
  TempDir tmp;
  REQUIRE(Entries(tmp.path()).empty());
  REQUIRE_OK(CreateOrCheckStoreRoot(tmp.path()));
  CHECK_OK(CheckStoreRoot(tmp.path()));
  CHECK(ValueOrDie(ListSteps(tmp.path())).empty());
}

TEST_CASE("A directory with foreign files is not a dcp store", "[store]") {
  TempDir tmp;
  WriteText(tmp.Sub("notes.txt"), "mine");
  const Status s = CreateOrCheckStoreRoot(tmp.path());
  CHECK_THAT(s, StatusIs(StatusCode::kFailedPrecondition, "'" + tmp.path() + "' is not a dcp store"));
  CHECK_THAT(s, StatusIs(StatusCode::kFailedPrecondition, "DCP_STORE"));
  // Nothing was written into the foreign directory.
  CHECK(Entries(tmp.path()) == std::vector<std::string>{"notes.txt"});
  CHECK_THAT(CheckStoreRoot(tmp.path()), StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
}

TEST_CASE("A regular file is not a dcp store", "[store]") {
  TempDir tmp;
  const std::string file = tmp.Sub("file");
  WriteText(file, "x");
  CHECK_THAT(CreateOrCheckStoreRoot(file),
             StatusIs(StatusCode::kFailedPrecondition, "'" + file + "' is not a dcp store (not a directory)"));
  CHECK_THAT(CheckStoreRoot(file), StatusIs(StatusCode::kFailedPrecondition, "not a directory"));
  CHECK(ReadText(file) == "x");
}

TEST_CASE("Markers of other versions or garbage are refused", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));

  WriteText(MarkerPath(root), "dcp-store 2\n");
  CHECK_THAT(CheckStoreRoot(root),
             StatusIs(StatusCode::kFailedPrecondition, "has format version 2; this build reads version 1"));
  CHECK_THAT(CreateOrCheckStoreRoot(root), StatusIs(StatusCode::kFailedPrecondition, "has format version 2"));
  CHECK(ReadText(MarkerPath(root)) == "dcp-store 2\n");  // left alone

  WriteText(MarkerPath(root), "garbage");
  CHECK_THAT(CheckStoreRoot(root),
             StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store: store marker is malformed"));
  WriteText(MarkerPath(root), "");
  CHECK_THAT(CheckStoreRoot(root), StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
  WriteText(MarkerPath(root), MarkerContents());
  CHECK_OK(CheckStoreRoot(root));
}

TEST_CASE("Publishing manifests commits steps", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  CHECK(ValueOrDie(ListSteps(root)).empty());
  CHECK_FALSE(ValueOrDie(LatestStep(root)).has_value());
  CHECK_FALSE(StepExists(root, 5));

  REQUIRE_OK(PublishManifest(root, 5, 1, Framed("manifest five")));
  REQUIRE_OK(PublishManifest(root, 10, 2, Framed(std::string("ten\0ten", 7))));
  REQUIRE_OK(PublishManifest(root, 3, 3, Framed("")));
  CHECK(ValueOrDie(ListSteps(root)) == std::vector<uint64_t>{3, 5, 10});
  CHECK(StepExists(root, 3));
  CHECK(StepExists(root, 5));
  CHECK(StepExists(root, 10));
  CHECK_FALSE(StepExists(root, 4));
  CHECK(ValueOrDie(ReadManifestFile(root, 5)) == Framed("manifest five"));
  CHECK(ValueOrDie(ReadManifestFile(root, 10)) == Framed(std::string("ten\0ten", 7)));
  CHECK(ValueOrDie(ReadManifestFile(root, 3)) == Framed(""));
  // LATEST names the largest committed step, whatever the publishing order.
  CHECK(ReadText(LatestPath(root)) == "10\n");
  CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(10));
  // No temporaries are left behind.
  CHECK(Entries(StepsDir(root)) == std::vector<std::string>{"00000000000000000003.manifest",
                                                            "00000000000000000005.manifest",
                                                            "00000000000000000010.manifest"});
  CHECK(Entries(root) == std::vector<std::string>{"DCP_STORE", "LATEST", "ranks", "steps"});

  // Republishing a step replaces its manifest.
  REQUIRE_OK(PublishManifest(root, 5, 4, Framed("manifest five, again")));
  CHECK(ValueOrDie(ReadManifestFile(root, 5)) == Framed("manifest five, again"));
  CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(10));
  CHECK(ValueOrDie(ListSteps(root)) == std::vector<uint64_t>{3, 5, 10});
}

TEST_CASE("ListSteps ignores temporaries and foreign files", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  REQUIRE_OK(PublishManifest(root, 7, 1, Framed("m")));
  WriteText(ManifestTempPath(root, 8, 2), "half-written");
  WriteText(StepsDir(root) + "/README", "x");
  WriteText(StepsDir(root) + "/8.manifest", "x");
  WriteText(StepsDir(root) + "/ 0000000000000000009.manifest", "x");
  CHECK(ValueOrDie(ListSteps(root)) == std::vector<uint64_t>{7});
  CHECK_FALSE(StepExists(root, 8));
  CHECK_FALSE(StepExists(root, 9));
  CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(7));
}

TEST_CASE("LatestStep goes by the manifests, whatever LATEST says", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  REQUIRE_OK(PublishManifest(root, 2, 1, Framed("two")));
  REQUIRE_OK(PublishManifest(root, 20, 2, Framed("twenty")));
  REQUIRE_OK(PublishManifest(root, 11, 3, Framed("eleven")));
  CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(20));
  CHECK(ReadText(LatestPath(root)) == "20\n");

  SECTION("LATEST names a step that is gone") {
    WriteText(LatestPath(root), "11\n");
    fs::remove(ManifestPath(root, 11));
    CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(20));
  }
  SECTION("LATEST is one step behind (a writer killed between the renames)") {
    WriteText(LatestPath(root), "11\n");
    CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(20));
  }
  SECTION("LATEST names a step never committed") {
    WriteText(LatestPath(root), "15\n");
    CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(20));
  }
  SECTION("LATEST holds garbage") {
    for (const char* junk : {"", "\n", "latest", "-", "99999999999999999999999\n", "\xff\xfe"}) {
      INFO("'" << junk << "'");
      WriteText(LatestPath(root), junk);
      CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(20));
    }
  }
  SECTION("LATEST is missing") {
    fs::remove(LatestPath(root));
    CHECK(ValueOrDie(LatestStep(root)) == std::optional<uint64_t>(20));
  }
  SECTION("LATEST is stale and no step is left") {
    for (uint64_t s : {2, 11, 20}) fs::remove(ManifestPath(root, s));
    CHECK_FALSE(ValueOrDie(LatestStep(root)).has_value());
  }
}

TEST_CASE("Reading a step that is not committed is NotFound naming the step", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  REQUIRE_OK(PublishManifest(root, 1, 1, Framed("one")));
  CHECK_THAT(ReadManifestFile(root, 9).status(),
             StatusIs(StatusCode::kNotFound, "step 9 is not committed in store '" + root + "'"));
  // A temporary of step 9 does not make it readable.
  WriteText(ManifestTempPath(root, 9, 5), "partial");
  CHECK_THAT(ReadManifestFile(root, 9).status(), StatusIs(StatusCode::kNotFound, "step 9 is not committed"));
}

TEST_CASE("Catalog calls on a root without a steps directory fail", "[store]") {
  TempDir tmp;
  CHECK_THAT(ListSteps(tmp.Sub("missing")).status(), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(LatestStep(tmp.Sub("missing")).status(), StatusIs(StatusCode::kNotFound));
  CHECK_FALSE(PublishManifest(tmp.Sub("missing"), 1, 1, Framed("x")).ok());
  CHECK_FALSE(fs::exists(tmp.Sub("missing")));
}

TEST_CASE("A manifest whose size disagrees with its frame is refused before it is read whole", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  REQUIRE_OK(PublishManifest(root, 1, 1, Framed("one")));
  const std::string path = ManifestPath(root, 1);
  SECTION("padded") {
    WriteText(path, Framed("one") + std::string(1 << 20, 'x'));
    CHECK_THAT(ReadManifestFile(root, 1).status(), StatusIs(StatusCode::kDataLoss, "manifest '" + path + "'"));
  }
  SECTION("a header declaring more than the limit") {
    std::string big = Framed("one");
    const uint64_t huge = kMaxManifestBytes;  // + the header: over the limit
    std::memcpy(big.data() + 16, &huge, sizeof(huge));
    WriteText(path, big);
    CHECK_THAT(ReadManifestFile(root, 1).status(),
               StatusIs(StatusCode::kDataLoss, "manifest '" + path + "' declares " +
                                                   std::to_string(huge + codec::kFrameHeaderSize) +
                                                   " bytes, more than the limit of " +
                                                   std::to_string(kMaxManifestBytes)));
  }
  SECTION("truncated below its header") {
    WriteText(path, Framed("one").substr(0, 20));
    CHECK_THAT(ReadManifestFile(root, 1).status(),
               StatusIs(StatusCode::kDataLoss, "manifest '" + path + "' is truncated (20 bytes)"));
  }
  SECTION("truncated payload") {
    WriteText(path, Framed("one").substr(0, codec::kFrameHeaderSize + 1));
    CHECK_THAT(ReadManifestFile(root, 1).status(),
               StatusIs(StatusCode::kDataLoss, "manifest '" + path + "' is truncated or padded: its header says 35 "
                                               "bytes, the file holds 33"));
  }
}

TEST_CASE("A step can be marked damaged; publishing or deleting it again clears the mark", "[store]") {
  TempDir tmp;
  const std::string root = tmp.path();
  REQUIRE_OK(CreateOrCheckStoreRoot(root));
  REQUIRE_OK(PublishManifest(root, 1, 1, Framed("one")));
  REQUIRE_OK(PublishManifest(root, 2, 2, Framed("two")));
  CHECK_FALSE(ValueOrDie(StepDamage(root, 2)).has_value());
  REQUIRE_OK(CheckStepIntact(root, 2));
  CHECK_THAT(MarkStepDamaged(root, 3, "x"), StatusIs(StatusCode::kNotFound, "step 3 is not committed"));

  REQUIRE_OK(MarkStepDamaged(root, 2, "record 'w' at (0) is missing"));
  CHECK(ValueOrDie(StepDamage(root, 2)) == std::optional<std::string>("record 'w' at (0) is missing"));
  CHECK_THAT(CheckStepIntact(root, 2),
             StatusIs(StatusCode::kDataLoss, "step 2 of store '" + root +
                                                 "' is marked damaged (record 'w' at (0) is missing); its intact "
                                                 "records stay readable with dcp-inspect; the newest intact step is 1"));
  // Not a manifest: the step list is unchanged.
  CHECK(ValueOrDie(ListSteps(root)) == std::vector<uint64_t>{1, 2});

  SECTION("cleared") {
    REQUIRE_OK(ClearStepDamaged(root, 2));
    REQUIRE_OK(ClearStepDamaged(root, 2));  // nothing to clear is fine
    REQUIRE_OK(CheckStepIntact(root, 2));
  }
  SECTION("republished") {
    REQUIRE_OK(PublishManifest(root, 2, 3, Framed("two, again")));
    REQUIRE_OK(CheckStepIntact(root, 2));
  }
  SECTION("deleted") {
    REQUIRE_OK(DeleteManifest(root, 2));
    CHECK_FALSE(ValueOrDie(StepDamage(root, 2)).has_value());
  }
  SECTION("no intact step left") {
    REQUIRE_OK(MarkStepDamaged(root, 1, "gone"));
    const Status s = CheckStepIntact(root, 2);
    CHECK(s.IsDataLoss());
    CHECK(s.message().find("newest intact") == std::string::npos);
  }
}

}  // namespace
}  // namespace dcp::storage
