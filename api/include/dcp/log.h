// Copyright (c) dcp authors.
//
// Where dcp's own messages go: warnings a collective call does not return as
// a Status (a rank's common state that differs from rank 0's, keys a
// lenient strict mode logs, a store marker rewritten, a rank store repaired
// on open, RocksDB's own warnings). By default each is one line on stderr,
// "dcp: <message>". An application with its own logger installs a sink.
//
//   dcp::SetLogSink([](dcp::LogLevel level, std::string_view message) {
//     my_logger.log(level == dcp::LogLevel::kError ? ERROR : WARNING, message);
//   });
//
// Thread safety: SetLogSink and Log may be called from any thread; the sink
// is called from the thread that logs (dcp's worker threads included), one
// call at a time.

#ifndef DCP_LOG_H_
#define DCP_LOG_H_

#include <functional>
#include <string_view>

namespace dcp {

enum class LogLevel { kInfo, kWarning, kError };

// The message carries no "dcp: " prefix and no newline.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

// Replaces the sink; an empty one restores the default (stderr).
void SetLogSink(LogSink sink);

// Sends `message` to the sink.
void Log(LogLevel level, std::string_view message);

}  // namespace dcp

#endif  // DCP_LOG_H_
