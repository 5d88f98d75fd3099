// green::net::buffered_reader, buffered_writer, buffered_stream — line and
// record I/O over a byte stream (asyncio's StreamReader / StreamWriter, Go's
// bufio.Reader / bufio.Writer).
//
// Design. A reader keeps one buffer of at most max(max_line, kChunk) bytes
// and refills it with one read_some() of the stream at a time, so a line
// split across TCP segments and many lines in one segment cost the same:
// one syscall per segment. Reads of kChunk bytes or more that the buffer
// cannot serve go straight to the caller's memory (no copy of a large
// payload). A writer gathers small writes and sends them with one
// write_all() when full or on flush(); a write of kChunk or more bypasses it
// (after flushing what was gathered, so the order is kept).
//
// Waiting is the stream's: every read or write is the stream's own green
// wait, with its per-call deadline, so a green::timeout scope or a kill
// interrupts it exactly as it would a tcp_stream call.
//
// Memory is bounded: read_until() gives up with error::too_long when
// max_line bytes hold no delimiter, instead of growing without limit (the
// peer decides how long a "line" is). Rejected: an unbounded std::string
// per line (one peer that never sends '\n' eats the process's memory).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "green/errors.hpp"
#include "green/net/tcp_stream.hpp"
#include "green/sched/scheduler.hpp"

namespace green::net {

// byte_source: a stream with tcp_stream's error_code read_some().
template <class S>
concept byte_source = requires(S& s, void* p, std::size_t n, std::error_code& ec, deadline d) {
  { s.read_some(p, n, ec, d) } -> std::same_as<std::size_t>;
};
// byte_sink: a stream with tcp_stream's error_code write_all().
template <class S>
concept byte_sink = requires(S& s, const void* p, std::size_t n, std::error_code& ec, deadline d) {
  { s.write_all(p, n, ec, d) } -> std::same_as<std::size_t>;
};

namespace detail {
// 4096: Go's bufio default and one page; a loopback or Ethernet segment
// (<= 64 KiB / 1460 B) then takes 1 to 16 reads.
inline constexpr std::size_t kChunk = 4096;

// throw_buffered() throws std::system_error(ec) naming the call, and the
// limit when ec is error::too_long.
[[noreturn]] inline void throw_buffered(std::error_code ec, const char* op, std::size_t limit) {
  std::string what = std::string("green::net: ") + op;
  if (ec == error::too_long) what += " (max_line " + std::to_string(limit) + " bytes)";
  throw std::system_error(ec, what);
}
}  // namespace detail

// buffered_reader reads lines, delimited records and exact byte counts from
// a stream it does not own (a tcp_stream by default; the stream must outlive
// the reader). One reader per stream: bytes it buffered are not seen by
// other reads of the stream. One fiber at a time.
//
// Errors: each call has a throwing form (std::system_error naming the call)
// and an error_code form. Besides the stream's own outcomes (timed_out at
// the deadline, operation_canceled, connection_reset...; timeout_error and
// fiber_exit are raised by both forms):
//   error::too_long  read_until / read_line found no delimiter within
//                    max_line() bytes. Nothing is consumed: the bytes stay
//                    in buffered(), and the reader stays usable (consume()
//                    them, or read_exact / read_some them).
//   error::eof       the stream ended before read_until's delimiter (the
//                    partial record stays in buffered()) or before
//                    read_exact's n bytes.
template <byte_source S = tcp_stream>
class buffered_reader {
 public:
  static constexpr std::size_t default_max_line = 64 * 1024;

  // buffered_reader() reads from s; a line or record may be at most
  // max_line bytes, its delimiter included. Throws std::invalid_argument if
  // max_line is 0.
  explicit buffered_reader(S& s, std::size_t max_line = default_max_line)
      : s_(&s), max_(max_line), cap_(std::max(max_line, detail::kChunk)) {
    if (max_line == 0) throw std::invalid_argument("green::net::buffered_reader: max_line must be at least 1");
  }
  buffered_reader(const buffered_reader&) = delete;
  buffered_reader& operator=(const buffered_reader&) = delete;

  // read_line() returns the next line without its "\n" and without a "\r"
  // before it (so "\r\n" lines read the same); std::nullopt at end of
  // stream. A last line the stream ends without "\n" is returned as a line
  // (as Python's readline): EOF mid-line is not an error here (use
  // read_until("\n") to tell). A line longer than max_line(): too_long.
  // The error_code form returns std::nullopt with ec set on failure.
  std::optional<std::string> read_line(deadline d = {}) {
    std::error_code ec;
    auto line = read_line(ec, d);
    if (ec) detail::throw_buffered(ec, "read_line", max_);
    return line;
  }
  std::optional<std::string> read_line(std::error_code& ec, deadline d = {}) {
    std::string line = read_until("\n", ec, d);
    if (ec == error::eof) {
      ec.clear();
      if (buffered().empty()) return std::nullopt;
      line.assign(buffered());
      consume(line.size());
    } else if (ec) {
      return std::nullopt;
    } else {
      line.pop_back();
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  // read_until() returns the bytes up to and including the first `delim`
  // (Go's ReadString, asyncio's readuntil). On any failure (too_long, eof,
  // the stream's errors, an exception) nothing is consumed. Throws
  // std::invalid_argument for an empty delim.
  std::string read_until(std::string_view delim, deadline d = {}) {
    std::error_code ec;
    std::string out = read_until(delim, ec, d);
    if (ec) detail::throw_buffered(ec, "read_until", max_);
    return out;
  }
  std::string read_until(std::string_view delim, std::error_code& ec, deadline d = {}) {
    if (delim.empty()) throw std::invalid_argument("green::net::buffered_reader::read_until: empty delimiter");
    ec.clear();
    std::size_t from = 0;  // bytes already searched, less a possible delimiter prefix
    for (;;) {
      std::string_view window = buffered().substr(0, max_);
      std::size_t at = window.find(delim, from);
      if (at != std::string_view::npos) {
        std::string out(window.substr(0, at + delim.size()));
        consume(out.size());
        return out;
      }
      if (window.size() == max_) {
        ec = error::too_long;
        return {};
      }
      from = window.size() >= delim.size() ? window.size() - delim.size() + 1 : 0;
      if (fill_(ec, d) == 0) {
        if (!ec) ec = error::eof;
        return {};
      }
    }
  }

  // read_exact() fills buf with n bytes: the buffered ones, then the
  // stream's. At end of stream first: error::eof; the error_code form
  // returns how many bytes it did copy (those are consumed).
  void read_exact(void* buf, std::size_t n, deadline d = {}) {
    std::error_code ec;
    read_exact(buf, n, ec, d);
    if (ec) detail::throw_buffered(ec, "read_exact", max_);
  }
  std::size_t read_exact(void* buf, std::size_t n, std::error_code& ec, deadline d = {}) {
    return read_fully(buf, n, ec, [&](void* p, std::size_t k, std::error_code& e) { return read_some(p, k, e, d); });
  }
  // read_exact(n) returns the n bytes as a string.
  std::string read_exact(std::size_t n, deadline d = {}) {
    std::string out(n, '\0');
    read_exact(out.data(), n, d);
    return out;
  }

  // read_some() returns up to n bytes: buffered ones if any, else one read
  // of the stream (straight into buf when n >= kChunk). 0 at end of stream
  // (or for n == 0). Same contract as tcp_stream::read_some.
  std::size_t read_some(void* buf, std::size_t n, deadline d = {}) {
    std::error_code ec;
    std::size_t r = read_some(buf, n, ec, d);
    if (ec) detail::throw_buffered(ec, "read_some", max_);
    return r;
  }
  std::size_t read_some(void* buf, std::size_t n, std::error_code& ec, deadline d = {}) {
    ec.clear();
    if (n == 0) return 0;
    if (buffered().empty()) {
      if (n >= detail::kChunk) return s_->read_some(buf, n, ec, d);
      if (fill_(ec, d) == 0) return 0;
    }
    std::size_t k = std::min(n, buffered().size());
    std::memcpy(buf, buf_.data() + head_, k);
    consume(k);
    return k;
  }

  // buffered() is what the reader holds and has not handed out yet;
  // consume(k) drops its first k bytes (k <= buffered().size()).
  std::string_view buffered() const noexcept { return {buf_.data() + head_, tail_ - head_}; }
  void consume(std::size_t k) noexcept {
    head_ += std::min(k, tail_ - head_);
    if (head_ == tail_) head_ = tail_ = 0;
  }
  std::size_t max_line() const noexcept { return max_; }
  S& stream() noexcept { return *s_; }

 private:
  // fill_() reads once from the stream into the buffer: the count (0 at end
  // of stream, with ec clear, or on error, with ec set). Caller: buffered()
  // is shorter than max(max_, kChunk), so there is room.
  std::size_t fill_(std::error_code& ec, deadline d) {
    if (buf_.size() - tail_ < detail::kChunk && head_ > 0) {  // slide the unread bytes to the front
      std::memmove(buf_.data(), buf_.data() + head_, tail_ - head_);
      tail_ -= head_;
      head_ = 0;
    }
    if (buf_.size() - tail_ < detail::kChunk && buf_.size() < cap_)
      buf_.resize(std::min(cap_, std::max(2 * buf_.size(), tail_ + detail::kChunk)));
    std::size_t r = s_->read_some(buf_.data() + tail_, buf_.size() - tail_, ec, d);
    if (ec) return 0;
    tail_ += r;
    return r;
  }

  S* s_;
  std::size_t max_;
  std::size_t cap_;        // the buffer never grows past this
  std::vector<char> buf_;  // [head_, tail_) unread; grown on demand, up to cap_
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

// buffered_writer gathers writes to a stream it does not own (a tcp_stream
// by default; the stream must outlive the writer) and sends them in order
// with one write_all() when the buffer is full or on flush(). One fiber at
// a time.
//
// Errors: as the stream's write_all(); after one, the bytes not yet sent
// stay pending() and the next flush() tries them again.
//
// Destruction flushes what is pending, as a last best effort: the
// destructor never throws, so an error there is dropped (with the pending
// bytes). It does not flush while an exception unwinds the scope (that
// would block the unwinding; the bytes are dropped). A kill that arrives
// during its flush ends the flush and is re-armed, so the fiber's next wait
// raises fiber_exit; a green::timeout scope that expires there ends it too.
// Call flush() to know the bytes went out.
template <byte_sink S = tcp_stream>
class buffered_writer {
 public:
  static constexpr std::size_t default_capacity = detail::kChunk;

  // buffered_writer() writes to s, gathering up to `capacity` bytes.
  // Throws std::invalid_argument if capacity is 0.
  explicit buffered_writer(S& s, std::size_t capacity = default_capacity)
      : s_(&s), cap_(capacity), unwinding_(std::uncaught_exceptions()) {
    if (capacity == 0) throw std::invalid_argument("green::net::buffered_writer: capacity must be at least 1");
  }
  buffered_writer(const buffered_writer&) = delete;
  buffered_writer& operator=(const buffered_writer&) = delete;
  ~buffered_writer() {
    if (buf_.empty() || std::uncaught_exceptions() > unwinding_) return;
    std::error_code ec;
    try {
      flush(ec);
    } catch (const fiber_exit&) {
      if (sched::fiber_base* f = sched::current_fiber()) f->kill();  // deliver the kill at the next wait
    } catch (...) {  // timeout_error or an allocation failure: dropped, as documented
    }
  }

  // write() queues n bytes, sending the buffer first when they do not fit;
  // n >= capacity goes straight to the stream after it. The error_code form
  // returns how many of the n bytes were queued or sent.
  void write(const void* p, std::size_t n, deadline d = {}) {
    std::error_code ec;
    write(p, n, ec, d);
    if (ec) detail::throw_buffered(ec, "write", 0);
  }
  std::size_t write(const void* p, std::size_t n, std::error_code& ec, deadline d = {}) {
    ec.clear();
    if (buf_.size() + n > cap_) {
      flush(ec, d);
      if (ec) return 0;
      if (n >= cap_) return s_->write_all(p, n, ec, d);
    }
    buf_.append(static_cast<const char*>(p), n);
    return n;
  }
  void write(std::string_view s, deadline d = {}) { write(s.data(), s.size(), d); }
  std::size_t write(std::string_view s, std::error_code& ec, deadline d = {}) {
    return write(s.data(), s.size(), ec, d);
  }

  // flush() sends every pending byte.
  void flush(deadline d = {}) {
    std::error_code ec;
    flush(ec, d);
    if (ec) detail::throw_buffered(ec, "flush", 0);
  }
  void flush(std::error_code& ec, deadline d = {}) {
    ec.clear();
    if (buf_.empty()) return;
    std::size_t sent = s_->write_all(buf_.data(), buf_.size(), ec, d);
    buf_.erase(0, sent);
  }

  // pending() is how many bytes wait for a flush.
  std::size_t pending() const noexcept { return buf_.size(); }
  std::size_t capacity() const noexcept { return cap_; }
  S& stream() noexcept { return *s_; }

 private:
  S* s_;
  std::size_t cap_;
  int unwinding_;    // std::uncaught_exceptions() at construction
  std::string buf_;  // pending bytes, at most cap_
};

// buffered_stream owns a stream (a tcp_stream by default) and reads and
// writes it through a buffered_reader and a buffered_writer: a line
// protocol's connection in one object. Neither copyable nor movable (the
// reader and writer point at the stream). Destruction flushes the writer
// (as ~buffered_writer), then closes the stream.
template <class S = tcp_stream>
requires byte_source<S> && byte_sink<S>
class buffered_stream {
 public:
  explicit buffered_stream(S s, std::size_t max_line = buffered_reader<S>::default_max_line,
                           std::size_t write_capacity = buffered_writer<S>::default_capacity)
      : s_(std::move(s)), r_(s_, max_line), w_(s_, write_capacity) {}

  buffered_reader<S>& reader() noexcept { return r_; }
  buffered_writer<S>& writer() noexcept { return w_; }
  S& stream() noexcept { return s_; }

  // The reader's and writer's calls, for brevity.
  std::optional<std::string> read_line(deadline d = {}) { return r_.read_line(d); }
  std::string read_until(std::string_view delim, deadline d = {}) { return r_.read_until(delim, d); }
  std::string read_exact(std::size_t n, deadline d = {}) { return r_.read_exact(n, d); }
  void write(std::string_view s, deadline d = {}) { w_.write(s, d); }
  void flush(deadline d = {}) { w_.flush(d); }

 private:
  S s_;  // declared first: destroyed last, after the writer's flush
  buffered_reader<S> r_;
  buffered_writer<S> w_;
};

}  // namespace green::net
