// Copyright (c) dcp authors.

#include "bench/bench_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

namespace dcp::bench {
namespace {

void DropFile(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace

void DropPageCache(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(path)) {
    DropFile(path);
    return;
  }
  for (const auto& e : fs::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) DropFile(e.path().string());
  }
}

void DropCaches(const std::string& dir) {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (f && (f << "3\n")) return;
  if (std::filesystem::exists(dir)) DropPageCache(dir);
}

PerfScope::PerfScope(const std::string& phase) {
  const char* want = std::getenv("DCP_BENCH_PERF_PHASE");
  const char* ctl = std::getenv("DCP_BENCH_PERF_CTL");
  if (want == nullptr || ctl == nullptr || phase != want) return;
  fd_ = ::open(ctl, O_WRONLY);
  if (fd_ >= 0 && ::write(fd_, "enable\n", 7) != 7) {
    ::close(fd_);
    fd_ = -1;
  }
}

PerfScope::~PerfScope() {
  if (fd_ < 0) return;
  [[maybe_unused]] ssize_t n = ::write(fd_, "disable\n", 8);
  ::close(fd_);
}

double RawWrite(const std::string& path, const std::vector<std::pair<const char*, size_t>>& pieces) {
  Timer t;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  for (const auto& [p, n] : pieces) {
    size_t done = 0;
    while (done < n) {
      const ssize_t w = ::write(fd, p + done, n - done);
      if (w <= 0) throw std::runtime_error("write failed on " + path);
      done += static_cast<size_t>(w);
    }
  }
  ::fsync(fd);
  ::close(fd);
  return t.Seconds();
}

double RawRead(const std::string& path, std::vector<char>* buffer) {
  Timer t;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  const off_t size = ::lseek(fd, 0, SEEK_END);
  buffer->resize(static_cast<size_t>(size));
  constexpr size_t kPiece = 8 << 20;
  for (off_t off = 0; off < size;) {
    const ssize_t r = ::pread(fd, buffer->data() + off, std::min<size_t>(kPiece, static_cast<size_t>(size - off)), off);
    if (r <= 0) throw std::runtime_error("read failed on " + path);
    off += r;
  }
  ::close(fd);
  return t.Seconds();
}

std::vector<char> NormalFloats(size_t n, bool bf16, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<char> out(n * (bf16 ? 2 : 4));
  for (size_t i = 0; i < n; ++i) {
    const float v = dist(rng);
    if (bf16) {
      uint32_t b;
      std::memcpy(&b, &v, 4);
      const uint16_t h = static_cast<uint16_t>(b >> 16);
      std::memcpy(out.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(out.data() + 4 * i, &v, 4);
    }
  }
  return out;
}

nlohmann::json GoalMet(const Figure& f) {
  if (f.goal.size() < 3) return nullptr;
  const std::string op = f.goal.substr(0, 2);
  const double target = std::stod(f.goal.substr(2));
  if (op == "<=") return f.value <= target;
  if (op == ">=") return f.value >= target;
  return nullptr;
}

nlohmann::json FiguresJson(const std::vector<Figure>& figures) {
  nlohmann::json out = nlohmann::json::array();
  for (const Figure& f : figures) {
    out.push_back({{"name", f.name}, {"value", f.value}, {"goal", f.goal}, {"met", GoalMet(f)}});
  }
  return out;
}

}  // namespace dcp::bench
