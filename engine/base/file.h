// Copyright (c) dcp authors.
//
// POSIX file helpers: the one wrapper around the filesystem calls dcp makes
// outside RocksDB. errno is translated here: ENOENT becomes NotFound, anything
// else IOError, and every message names the path.
//
// Durability: WriteFileAtomic is the commit primitive. It writes a temporary
// file, fsyncs it, renames it over the target and fsyncs the directory, so a
// crash leaves either the old contents or the new, never a mix.
//
// Thread safety: all functions are thread-safe (they share no state).

#ifndef DCP_ENGINE_BASE_FILE_H_
#define DCP_ENGINE_BASE_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"

namespace dcp::base {

// "a/b" from "a" and "b" (no duplicate separators).
std::string JoinPath(std::string_view a, std::string_view b);

// IOError (or NotFound for ENOENT) naming `what` and `path` with strerror(err).
Status ErrnoStatus(int err, std::string_view what, std::string_view path);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// mkdir -p. OK if the directory already exists.
Status CreateDirs(const std::string& path);

// Names of the entries of `dir` (no "." or ".."), sorted.
Result<std::vector<std::string>> ListDir(const std::string& dir);

// The whole file. DataLoss if the file is larger than `max_bytes` (untrusted
// sizes are bounded before allocation) or is not a regular file (a FIFO, a
// device, a socket, a directory: refused without blocking).
Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes);

// At most the first `n` bytes of a regular file (fewer if it is shorter), and
// the file's size in `*file_size` if given. Errors as ReadFile.
Result<std::string> ReadFileHead(const std::string& path, size_t n, uint64_t* file_size = nullptr);

// OK if `path` (following symbolic links) is a regular file; InvalidArgument
// naming what it is otherwise (NotFound/IOError if it cannot be stat'ed).
Status CheckRegularFile(const std::string& path);

// "a FIFO", "a character device", ... for a stat mode (for messages).
std::string FileTypeName(unsigned mode);

// rename(2): IOError (NotFound) naming both paths on failure.
Status RenameFile(const std::string& from, const std::string& to);

// Writes `data` to `tmp_path`, fsyncs it, renames it to `path` and fsyncs the
// parent directory. On failure the temporary file is removed. With `durable`
// false the two fsyncs are skipped: still all-or-nothing for readers, but a
// power loss may leave the old contents (for hints, not for commits).
// REQUIRES: both paths in the same directory.
Status WriteFileAtomic(const std::string& path, const std::string& tmp_path, std::string_view data,
                       bool durable = true);

// fsync of a directory (makes renames and creations in it durable).
Status SyncDir(const std::string& dir);

// Removes a file; OK if it does not exist.
Status RemoveFile(const std::string& path);

// A regular file read at offsets (pread), for inputs read piece by piece
// (imports). Open refuses what is not a regular file without blocking
// (DataLoss, as ReadFile). Thread safety: Read may be called concurrently.
class RandomAccessFile {
 public:
  static Result<std::unique_ptr<RandomAccessFile>> Open(const std::string& path);
  ~RandomAccessFile();
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;

  // Exactly `n` bytes at `offset` into `dst`; DataLoss naming the path if the
  // file ends first (it shrank), IOError on a read error.
  Status Read(uint64_t offset, size_t n, void* dst) const;
  // The size when opened.
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  RandomAccessFile(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

// Writes a new file sequentially and publishes it whole: the bytes go to a
// temporary file next to `path` ("<path>.tmp.<pid>"); Commit() fsyncs it and
// renames it over `path`. A writer destroyed without a successful Commit()
// removes the temporary, so a failed or interrupted export never leaves a
// truncated file under the final name. Only a regular file (or nothing) is
// ever replaced: Create refuses a path that is a device, FIFO, socket or
// directory with InvalidArgument; a symbolic link to a regular file is
// followed, and its target replaced.
//
// Thread safety: one thread at a time.
class FileWriter {
 public:
  // Creates the temporary file. IOError/NotFound naming the path on failure.
  static Result<std::unique_ptr<FileWriter>> Create(const std::string& path);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Appends `data`. REQUIRES: not committed.
  Status Append(std::string_view data);
  // Bytes appended so far.
  uint64_t size() const { return size_; }
  // fsync, close, rename to the final path, fsync the directory.
  Status Commit();

  const std::string& path() const { return path_; }

 private:
  FileWriter(std::string path, std::string tmp_path, int fd);
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool committed_ = false;
};

}  // namespace dcp::base

#endif  // DCP_ENGINE_BASE_FILE_H_
