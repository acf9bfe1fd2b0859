// Copyright (c) dcp authors.
//
// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with its
// contents on destruction unless DCP_KEEP_TEST_DIRS is set.

#ifndef DCP_TESTS_TESTING_TEMP_DIR_H_
#define DCP_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace dcp::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace dcp::testing

#endif  // DCP_TESTS_TESTING_TEMP_DIR_H_
