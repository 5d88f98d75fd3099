// green::net::buffered_reader / buffered_writer / buffered_stream: lines,
// delimiters at chunk and buffer boundaries, the max_line limit, EOF
// mid-line, exact reads, write gathering and its order, destruction, and
// the deadline / green::timeout machinery. Boundary cases run over a
// scripted source whose read_some() returns exactly the chunks the test
// gives (so each split is forced, not hoped for); the rest over loopback
// TCP. Parameterized over worker counts; teardown checks no fd leaked.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>
#include <green/net.hpp>

#include "net_test_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using green::net::address;
using green::net::buffered_reader;
using green::net::buffered_stream;
using green::net::buffered_writer;
using green::net::tcp_listener;
using green::net::tcp_stream;

namespace {

class net_buffered_test : public green::testing::fd_checked_param {};
INSTANTIATE_TEST_SUITE_P(w, net_buffered_test, ::testing::ValuesIn(green::testing::worker_counts()),
                         green::testing::worker_name);

// scripted is a byte source whose read_some() returns its chunks one by
// one (a chunk larger than the caller's room is split), then end of stream.
struct scripted {
  std::vector<std::string> chunks;
  std::size_t reads = 0;
  std::size_t read_some(void* p, std::size_t n, std::error_code& ec, green::net::deadline = {}) {
    ec.clear();
    ++reads;
    if (chunks.empty()) return 0;
    std::string& c = chunks.front();
    std::size_t k = std::min(n, c.size());
    std::memcpy(p, c.data(), k);
    c.erase(0, k);
    if (c.empty()) chunks.erase(chunks.begin());
    return k;
  }
};

// recording is a byte sink that keeps each write_all() as one entry, or
// fails every write with `fail`.
struct recording {
  std::vector<std::string> writes;
  std::error_code fail;
  std::size_t write_all(const void* p, std::size_t n, std::error_code& ec, green::net::deadline = {}) {
    ec = fail;
    if (fail) return 0;
    writes.emplace_back(static_cast<const char*>(p), n);
    return n;
  }
};

// A connected loopback pair.
struct tcp_pair {
  tcp_listener l = tcp_listener::bind(address::loopback_v4(0));
  tcp_stream a = tcp_stream::connect(l.address());
  tcp_stream b = l.accept();
};

TEST(net_buffered, read_line_joins_a_line_split_across_reads) {
  scripted src{{"hel", "lo\r", "\nwor", "ld\n", "\n", "last"}};
  buffered_reader<scripted> r(src);
  EXPECT_EQ(r.read_line(), "hello");  // "\r\n" is stripped as "\n" is
  EXPECT_EQ(r.read_line(), "world");
  EXPECT_EQ(r.read_line(), "");      // an empty line is not end of stream
  EXPECT_EQ(r.read_line(), "last");  // EOF mid-line: the last line still counts
  EXPECT_EQ(r.read_line(), std::nullopt);
  EXPECT_EQ(r.read_line(), std::nullopt);  // and stays ended
}

TEST(net_buffered, read_until_keeps_the_delimiter_and_finds_one_split_across_reads) {
  scripted src{{"GET / HTTP/1.1\r\nHost: x\r", "\n\r", "\nbody"}};
  buffered_reader<scripted> r(src);
  EXPECT_EQ(r.read_until("\r\n\r\n"), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.read_exact(4), "body");
}

TEST(net_buffered, delimiter_at_the_buffer_boundary) {
  // The first read fills the 4096-byte chunk exactly; the delimiter's last
  // byte arrives in the next read.
  std::string first(4095, 'a');
  first += '\r';
  scripted src{{first, "\nrest\n"}};
  buffered_reader<scripted> r(src, 8192);
  std::string line = r.read_until("\r\n");
  EXPECT_EQ(line.size(), 4097u);
  EXPECT_EQ(line.substr(4094), "a\r\n");
  EXPECT_EQ(r.read_line(), "rest");
}

TEST(net_buffered, a_line_of_exactly_max_line_bytes_fits_one_more_is_too_long) {
  scripted src{{"1234567\n", "12345678\nnext\n"}};
  buffered_reader<scripted> r(src, 8);
  EXPECT_EQ(r.read_line(), "1234567");  // 8 bytes with its "\n"
  std::error_code ec;
  EXPECT_EQ(r.read_line(ec), std::nullopt);
  EXPECT_EQ(ec, green::net::error::too_long);
  // Nothing was consumed: the 8 bytes are still there; drop them and go on.
  EXPECT_EQ(r.buffered().substr(0, 8), "12345678");
  r.consume(8);
  EXPECT_EQ(r.read_line(), "");  // the rest of the long line: its "\n"
  EXPECT_EQ(r.read_line(), "next");
}

TEST(net_buffered, writer_gathers_small_writes_and_keeps_order_around_a_large_one) {
  recording sink;
  {
    buffered_writer<recording> w(sink, 8);
    w.write("ab");
    w.write("cd");
    EXPECT_TRUE(sink.writes.empty());
    EXPECT_EQ(w.pending(), 4u);
    w.write("0123456789");  // >= capacity: "abcd" first, then this straight through
    w.write("efghij");      // fits an empty buffer
    w.write("klm");         // does not fit: "efghij" goes first
    w.flush();
    EXPECT_EQ(w.pending(), 0u);
    w.write("tail");  // left for the destructor
  }
  EXPECT_EQ(sink.writes, (std::vector<std::string>{"abcd", "0123456789", "efghij", "klm", "tail"}));
}

// ~buffered_writer flushes but must never throw (noexcept): an error there
// is dropped with the pending bytes.
TEST(net_buffered, writer_destructor_swallows_a_flush_error) {
  recording sink;
  {
    buffered_writer<recording> w(sink, 16);
    w.write("lost");
    sink.fail = std::make_error_code(std::errc::broken_pipe);
    std::error_code ec;
    w.flush(ec);
    EXPECT_EQ(ec, std::errc::broken_pipe);
    EXPECT_EQ(w.pending(), 4u);  // kept for a retry
  }
  EXPECT_TRUE(sink.writes.empty());
}

TEST(net_buffered, bad_arguments_are_refused) {
  scripted src;
  recording sink;
  EXPECT_THROW(buffered_reader<scripted>(src, 0), std::invalid_argument);
  EXPECT_THROW(buffered_writer<recording>(sink, 0), std::invalid_argument);
  buffered_reader<scripted> r(src);
  EXPECT_THROW(r.read_until(""), std::invalid_argument);
}

TEST_P(net_buffered_test, many_lines_in_one_segment) {
  run([] {
    tcp_pair p;
    std::string all;
    for (int i = 0; i < 1000; ++i) all += std::to_string(i) + "\r\n";
    p.a.write_all(all);
    p.a.shutdown();
    buffered_reader r(p.b);
    int n = 0;
    while (auto line = r.read_line()) {
      ASSERT_EQ(*line, std::to_string(n));
      ++n;
    }
    EXPECT_EQ(n, 1000);
  });
}

TEST_P(net_buffered_test, lines_split_across_writes_over_tcp) {
  run([] {
    tcp_pair p;
    p.a.set_nodelay(true);
    auto writer = green::spawn([&] {
      for (const char* part : {"he", "llo\nwo", "rld", "\n"}) {
        p.a.write_all(part);
        green::this_fiber::yield();
      }
      p.a.shutdown();
    });
    buffered_reader r(p.b);
    EXPECT_EQ(r.read_line(), "hello");
    EXPECT_EQ(r.read_line(), "world");
    EXPECT_EQ(r.read_line(), std::nullopt);
    writer.join();
  });
}

TEST_P(net_buffered_test, over_long_line_names_the_limit_and_leaves_the_reader_usable) {
  run([] {
    tcp_pair p;
    auto writer = green::spawn([&] {
      p.a.write_all(std::string(100 * 1024, 'x') + "\nshort\n");
      p.a.shutdown();
    });
    buffered_reader r(p.b);
    try {
      r.read_line();
      ADD_FAILURE() << "no error for a 100 KiB line";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), green::net::error::too_long);
      EXPECT_NE(std::string(e.what()).find("65536"), std::string::npos) << e.what();
    }
    EXPECT_EQ(r.buffered().size(), 65536u);  // bounded: the reader held max_line bytes, no more
    // Skip the rest of the long line, then read on.
    std::string skipped;
    for (;;) {
      std::error_code ec;
      std::string part = r.read_until("\n", ec);
      if (!ec) {
        skipped += part;
        break;
      }
      ASSERT_EQ(ec, green::net::error::too_long);
      skipped += r.buffered();
      r.consume(r.buffered().size());
    }
    EXPECT_EQ(skipped.size(), 100u * 1024 + 1);
    EXPECT_EQ(r.read_line(), "short");
    writer.join();
  });
}

TEST_P(net_buffered_test, eof_mid_line_leaves_the_partial_buffered) {
  run([] {
    tcp_pair p;
    p.a.write_all("complete\npartial");
    p.a.shutdown();
    buffered_reader r(p.b);
    EXPECT_EQ(r.read_until("\n"), "complete\n");
    try {
      r.read_until("\n");
      ADD_FAILURE() << "no error at end of stream mid-line";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), green::net::error::eof) << e.what();
    }
    EXPECT_EQ(r.buffered(), "partial");  // nothing consumed
    std::error_code ec;
    EXPECT_EQ(r.read_until("\n", ec), "");
    EXPECT_EQ(ec, green::net::error::eof);
    EXPECT_EQ(r.read_line(), "partial");  // read_line takes it as the last line
    EXPECT_EQ(r.read_line(), std::nullopt);
  });
}

TEST_P(net_buffered_test, read_exact_takes_buffered_bytes_then_the_socket) {
  run([] {
    tcp_pair p;
    const std::size_t big = 1 << 20;
    std::string payload(big, '\0');
    for (std::size_t i = 0; i < big; ++i) payload[i] = static_cast<char>('a' + i % 23);
    auto writer = green::spawn([&] {
      buffered_writer w(p.a);
      w.write(std::to_string(big) + "\n");
      // Odd-sized pieces: some gathered, some straight through.
      for (std::size_t at = 0, k = 1; at < big; at += k, k = k * 3 % 9001 + 1) w.write(payload.substr(at, k));
      w.write("end\n");
    });  // the destructor flushes
    buffered_reader r(p.b);
    std::size_t n = std::stoul(*r.read_line());
    ASSERT_EQ(n, big);
    std::string got = r.read_exact(n);
    EXPECT_TRUE(got == payload);
    EXPECT_EQ(r.read_line(), "end");
    writer.join();
    p.a.shutdown();
    char c;
    std::error_code ec;
    EXPECT_EQ(r.read_exact(&c, 1, ec), 0u);
    EXPECT_EQ(ec, green::net::error::eof);
  });
}

TEST_P(net_buffered_test, deadline_and_timeout_scope_interrupt_a_read_from_a_silent_peer) {
  run([] {
    tcp_pair p;  // p.a never sends
    buffered_reader r(p.b);
    green::testing::expect_system_error([&] { r.read_line(5ms); }, std::errc::timed_out, "read_line");
    {
      green::timeout t(10ms);
      try {
        std::error_code ec;  // the error_code form too: the scope's exception is not the call's error
        r.read_until("\n", ec);
        ADD_FAILURE() << "no timeout_error";
      } catch (const green::timeout_error& e) {
        EXPECT_EQ(e.owner(), &t);
      }
    }
    // Still usable afterwards.
    p.a.write_all("late\n");
    EXPECT_EQ(r.read_line(), "late");
  });
}

TEST_P(net_buffered_test, buffered_stream_echoes_lines) {
  run([] {
    tcp_listener l = tcp_listener::bind(address::loopback_v4(0));
    auto server = green::spawn([&] {
      buffered_stream s(l.accept());
      while (auto line = s.read_line()) {
        s.write("echo: " + *line + "\n");
        s.flush();
      }
    });
    buffered_stream c(tcp_stream::connect(l.address()));
    for (const char* m : {"one", "two", "three"}) {
      c.write(std::string(m) + "\n");
      c.flush();
      EXPECT_EQ(c.read_line(), std::string("echo: ") + m);
    }
    c.stream().shutdown();
    EXPECT_EQ(c.read_line(), std::nullopt);
    server.join();
  });
}

}  // namespace
