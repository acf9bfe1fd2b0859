// Copyright (c) dcp authors.

#include "engine/base/file.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
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

TEST_CASE("Reads refuse what is not a regular file, without blocking", "[base]") {
  testing::TempDir dir;
  const std::string fifo = dir.Sub("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  // Opening a FIFO for reading would wait for a writer forever.
  CHECK_THAT(ReadFile(fifo, 100).status(), StatusIs(StatusCode::kDataLoss, "'" + fifo + "' is a FIFO, not a regular file"));
  CHECK_THAT(ReadFileHead(fifo, 8).status(), StatusIs(StatusCode::kDataLoss, "is a FIFO"));
  CHECK_THAT(ReadFile("/dev/zero", 100).status(), StatusIs(StatusCode::kDataLoss, "is a character device"));
  CHECK_THAT(ReadFile(dir.path(), 100).status(), StatusIs(StatusCode::kDataLoss, "is a directory"));
  CHECK_THAT(CheckRegularFile(fifo), StatusIs(StatusCode::kInvalidArgument, "is a FIFO"));
  std::ofstream(dir.Sub("f")) << "0123456789";
  CHECK(ValueOrDie(ReadFileHead(dir.Sub("f"), 4)) == "0123");
  CHECK(ValueOrDie(ReadFileHead(dir.Sub("f"), 40)) == "0123456789");
  REQUIRE_OK(CheckRegularFile(dir.Sub("f")));
}

TEST_CASE("FileWriter never replaces a device, FIFO or socket", "[base]") {
  testing::TempDir dir;
  const std::string fifo = dir.Sub("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_THAT(FileWriter::Create(fifo).status(),
             StatusIs(StatusCode::kInvalidArgument, "output path '" + fifo + "' is a FIFO, not a regular file"));
  CHECK_THAT(FileWriter::Create("/dev/null").status(), StatusIs(StatusCode::kInvalidArgument, "is a character device"));
  const std::string sock = dir.Sub("sock");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  CHECK_THAT(FileWriter::Create(sock).status(), StatusIs(StatusCode::kInvalidArgument, "is a socket"));
  ::close(fd);
  struct stat st;
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));  // still there, untouched
  // A symbolic link to a regular file is followed: the link stays, its target
  // gets the new contents.
  std::ofstream(dir.Sub("target")) << "old";
  REQUIRE(::symlink(dir.Sub("target").c_str(), dir.Sub("link").c_str()) == 0);
  auto w = ValueOrDie(FileWriter::Create(dir.Sub("link")));
  REQUIRE_OK(w->Append("new"));
  REQUIRE_OK(w->Commit());
  REQUIRE(::lstat(dir.Sub("link").c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(ValueOrDie(ReadFile(dir.Sub("target"), 10)) == "new");
}

}  // namespace
}  // namespace dcp::base
