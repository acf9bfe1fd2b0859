// Copyright (c) dcp authors.

#include "engine/base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace dcp::base {

std::string FileTypeName(unsigned mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

std::string JoinPath(std::string_view a, std::string_view b) {
  std::string out(a);
  if (!out.empty() && out.back() != '/' && !b.empty()) out.push_back('/');
  out.append(b);
  return out;
}

Status ErrnoStatus(int err, std::string_view what, std::string_view path) {
  std::string msg(what);
  msg += " '";
  msg += path;
  msg += "': ";
  msg += std::strerror(err);
  if (err == ENOENT) return Status::NotFound(std::move(msg));
  return Status::IOError(std::move(msg));
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status CreateDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty directory path");
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "cannot create directory", partial);
    }
  }
  if (!IsDirectory(path)) return Status::IOError("'" + path + "' exists and is not a directory");
  return Status::OK();
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "cannot list directory", dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

namespace {

// Opens a regular file for reading without blocking (a FIFO would otherwise
// wait for a writer); DataLoss naming what it is if it is something else.
Status OpenRegular(const std::string& path, Fd* fd, uint64_t* size) {
  *fd = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd->get() < 0) return ErrnoStatus(errno, "cannot open", path);
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return Status::DataLoss("'" + path + "' is " + FileTypeName(st.st_mode) + ", not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

Result<std::string> ReadAt(const Fd& fd, const std::string& path, size_t n) {
  std::string data(n, '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t r = ::pread(fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path);
    }
    if (r == 0) break;  // shrank under us: return what is there
    done += static_cast<size_t>(r);
  }
  data.resize(done);
  return data;
}

}  // namespace

Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) {
  Fd fd(-1);
  uint64_t size = 0;
  DCP_RETURN_IF_ERROR(OpenRegular(path, &fd, &size));
  if (size > max_bytes) {
    return Status::DataLoss("file '" + path + "' is " + std::to_string(size) + " bytes, more than the limit of " +
                            std::to_string(max_bytes));
  }
  return ReadAt(fd, path, static_cast<size_t>(size));
}

Result<std::string> ReadFileHead(const std::string& path, size_t n, uint64_t* file_size) {
  Fd fd(-1);
  uint64_t size = 0;
  DCP_RETURN_IF_ERROR(OpenRegular(path, &fd, &size));
  if (file_size != nullptr) *file_size = size;
  return ReadAt(fd, path, static_cast<size_t>(std::min<uint64_t>(size, n)));
}

Result<std::unique_ptr<RandomAccessFile>> RandomAccessFile::Open(const std::string& path) {
  Fd fd(-1);
  uint64_t size = 0;
  DCP_RETURN_IF_ERROR(OpenRegular(path, &fd, &size));
  return std::unique_ptr<RandomAccessFile>(new RandomAccessFile(path, fd.release(), size));
}

RandomAccessFile::~RandomAccessFile() { ::close(fd_); }

Status RandomAccessFile::Read(uint64_t offset, size_t n, void* dst) const {
  char* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path_);
    }
    if (r == 0) {
      return Status::DataLoss("file '" + path_ + "' ends at byte " + std::to_string(offset + done) + ", before byte " +
                              std::to_string(offset + n) + " (it shrank while being read)");
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status CheckRegularFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("'" + path + "' is " + FileTypeName(st.st_mode) + ", not a regular file");
  }
  return Status::OK();
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus(errno, "cannot rename to '" + to + "' from", from);
  return Status::OK();
}

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "cannot open directory", dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "cannot fsync directory", dir);
  return Status::OK();
}

Status WriteFileAtomic(const std::string& path, const std::string& tmp_path, std::string_view data, bool durable) {
  Status s;
  {
    Fd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoStatus(errno, "cannot create", tmp_path);
    size_t done = 0;
    while (done < data.size() && s.ok()) {
      const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        s = ErrnoStatus(errno, "cannot write", tmp_path);
      } else {
        done += static_cast<size_t>(n);
      }
    }
    if (s.ok() && durable && ::fsync(fd.get()) != 0) s = ErrnoStatus(errno, "cannot fsync", tmp_path);
    if (s.ok() && ::close(fd.release()) != 0) s = ErrnoStatus(errno, "cannot close", tmp_path);
  }
  if (s.ok() && ::rename(tmp_path.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus(errno, "cannot rename to '" + path + "' from", tmp_path);
  }
  if (!s.ok()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  return durable ? SyncDir(ParentDir(path)) : Status::OK();
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "cannot remove", path);
  return Status::OK();
}

Result<std::unique_ptr<FileWriter>> FileWriter::Create(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty output file path");
  // The output replaces a regular file or nothing: a device, FIFO, socket or
  // directory at the path is refused, never replaced by a rename. A symbolic
  // link to a regular file is followed (the link stays, its target is
  // replaced).
  std::string target = path;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return Status::InvalidArgument("output path '" + path + "' is " + FileTypeName(st.st_mode) +
                                     ", not a regular file: refusing to replace it");
    }
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) != nullptr) target = resolved;
  }
  std::string tmp = target + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "cannot create", tmp);
  return std::unique_ptr<FileWriter>(new FileWriter(target, std::move(tmp), fd));
}

FileWriter::FileWriter(std::string path, std::string tmp_path, int fd)
    : path_(std::move(path)), tmp_path_(std::move(tmp_path)), fd_(fd) {}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

Status FileWriter::Append(std::string_view data) {
  if (fd_ < 0) return Status::FailedPrecondition("file '" + path_ + "' is already closed");
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot write", tmp_path_);
    }
    done += static_cast<size_t>(n);
  }
  size_ += data.size();
  return Status::OK();
}

Status FileWriter::Commit() {
  if (fd_ < 0) return Status::FailedPrecondition("file '" + path_ + "' is already closed");
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, "cannot fsync", tmp_path_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoStatus(errno, "cannot close", tmp_path_);
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("output path '" + path_ + "' became " + FileTypeName(st.st_mode) +
                                   ": refusing to replace it");
  }
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus(errno, "cannot rename to '" + path_ + "' from", tmp_path_);
  }
  committed_ = true;
  return SyncDir(ParentDir(path_));
}

}  // namespace dcp::base
