// SPDX-License-Identifier: Apache-2.0
#include "line_source.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "log_record.hpp"

namespace bloccs::logs {

Status for_each_line(const std::filesystem::path& file, const std::function<bool(const Line&)>& f) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(file.c_str(), "r"), &std::fclose);
  if (!in) {
    const std::string why = std::strerror(errno);
    std::error_code ec;
    return Error{Errc::not_found, "cannot read the log file " + file.string() + " (" + why +
                                      "); a relative path is taken from the working directory " +
                                      std::filesystem::current_path(ec).string()};
  }
  // getline(3) reads a line of any length (and NUL bytes in it) in one piece.
  struct Buffer {
    char* data = nullptr;
    std::size_t capacity = 0;
    ~Buffer() { std::free(data); }
  } buffer;
  Line line;
  Status st;
  for (;;) {
    errno = 0;
    const ssize_t n = getline(&buffer.data, &buffer.capacity, in.get());
    if (n < 0) {
      if (std::ferror(in.get()))
        st = Error{Errc::system_error, "reading " + file.string() + " failed after line " +
                                           std::to_string(line.number) + ": " +
                                           std::strerror(errno)};
      break;
    }
    std::string_view text(buffer.data, static_cast<std::size_t>(n));
    if (text.ends_with('\n')) text.remove_suffix(1);
    if (text.ends_with('\r')) text.remove_suffix(1);
    ++line.number;
    line.full_length = text.size();
    line.text = text.substr(0, kMaxLineBytes);
    if (!f(line)) break;
  }
  return st;
}

}  // namespace bloccs::logs
