// Copyright (c) dcp authors.

#include "engine/base/file.h"

#include <catch2/catch.hpp>

#include <fstream>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::base {
namespace {

using testing::StatusIs;

TEST_CASE("JoinPath", "[base]") {
  CHECK(JoinPath("a", "b") == "a/b");
  CHECK(JoinPath("a/", "b") == "a/b");
  CHECK(JoinPath("", "b") == "b");
  CHECK(JoinPath("a", "") == "a");
}

TEST_CASE("WriteFileAtomic replaces whole files and leaves no temporary", "[base]") {
  testing::TempDir dir;
  const std::string path = dir.Sub("f");
  REQUIRE_OK(WriteFileAtomic(path, path + ".tmp", "first"));
  CHECK(ValueOrDie(ReadFile(path, 100)) == "first");
  REQUIRE_OK(WriteFileAtomic(path, path + ".tmp", std::string(5000, 'x')));
  CHECK(ValueOrDie(ReadFile(path, 10000)) == std::string(5000, 'x'));
  CHECK_FALSE(PathExists(path + ".tmp"));
  CHECK(ValueOrDie(ListDir(dir.path())) == std::vector<std::string>{"f"});
}

TEST_CASE("file errors name the path", "[base]") {
  testing::TempDir dir;
  REQUIRE_THAT(ReadFile(dir.Sub("missing"), 10).status(), StatusIs(StatusCode::kNotFound, "missing"));
  REQUIRE_OK(WriteFileAtomic(dir.Sub("big"), dir.Sub("big.tmp"), std::string(100, 'a')));
  REQUIRE_THAT(ReadFile(dir.Sub("big"), 99).status(), StatusIs(StatusCode::kDataLoss, "more than the limit of 99"));
  REQUIRE_THAT(ListDir(dir.Sub("nodir")).status(), StatusIs(StatusCode::kNotFound, "nodir"));
  REQUIRE_THAT(WriteFileAtomic(dir.Sub("x/y"), dir.Sub("x/y.tmp"), "z"),
               StatusIs(StatusCode::kNotFound, "cannot create"));
  std::ofstream(dir.Sub("plain")) << "p";
  REQUIRE_THAT(CreateDirs(dir.Sub("plain")), StatusIs(StatusCode::kIOError, "is not a directory"));
}

TEST_CASE("CreateDirs makes nested directories and is idempotent", "[base]") {
  testing::TempDir dir;
  REQUIRE_OK(CreateDirs(dir.Sub("a/b/c")));
  REQUIRE_OK(CreateDirs(dir.Sub("a/b/c")));
  CHECK(IsDirectory(dir.Sub("a/b/c")));
  REQUIRE_OK(SyncDir(dir.Sub("a")));
  REQUIRE_OK(RemoveFile(dir.Sub("not-there")));
}

TEST_CASE("FileWriter publishes the file only on Commit", "[base]") {
  testing::TempDir dir;
  const std::string path = dir.Sub("out.bin");
  {
    auto w = ValueOrDie(FileWriter::Create(path));
    REQUIRE_OK(w->Append("abc"));
    REQUIRE_OK(w->Append(std::string(10000, 'z')));
    CHECK(w->size() == 10003);
    CHECK_FALSE(PathExists(path));
    REQUIRE_OK(w->Commit());
    REQUIRE_THAT(w->Append("more"), StatusIs(StatusCode::kFailedPrecondition, "already closed"));
  }
  CHECK(ValueOrDie(ReadFile(path, 20000)) == "abc" + std::string(10000, 'z'));
  {
    // Abandoned: neither the final file changes nor a temporary stays behind.
    auto w = ValueOrDie(FileWriter::Create(path));
    REQUIRE_OK(w->Append("partial"));
  }
  CHECK(ValueOrDie(ReadFile(path, 20000)).size() == 10003);
  CHECK(ValueOrDie(ListDir(dir.path())) == std::vector<std::string>{"out.bin"});
  REQUIRE_THAT(FileWriter::Create(dir.Sub("no/such/dir/f")).status(), StatusIs(StatusCode::kNotFound, "cannot create"));
  REQUIRE_THAT(FileWriter::Create(dir.path()).status(), StatusIs(StatusCode::kInvalidArgument, "is a directory"));
}

}  // namespace
}  // namespace dcp::base
