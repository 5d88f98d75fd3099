// echo_server: a TCP echo server with one fiber per connection, and a load
// mode that measures it.
//
//   echo_server                      serve on 127.0.0.1:0 and load it with
//                                    100 clients for 2 s (self-contained)
//   echo_server --port 7000          serve on port 7000 until killed
//   echo_server --clients 1000 [--connect 127.0.0.1:7000] [--seconds 5]
//                                    N client fibers, each with one 64-byte
//                                    message in flight; prints round trips/s
//   --workers W                      runtime workers (default: one per core)
#include <green/green.hpp>
#include <green/net.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace net = green::net;

namespace {

// serve_connection() echoes until the peer closes or the connection fails.
void serve_connection(net::tcp_stream s) {
  s.set_nodelay(true);
  char buf[16 * 1024];
  std::error_code ec;
  for (;;) {
    std::size_t n = s.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) return;  // EOF, reset, or closed: drop the connection
    s.write_all(buf, n, ec);
    if (ec) return;
  }
}

// serve() accepts forever. Out of fds (EMFILE/ENFILE), it pauses and
// retries: the pending connections wait in the backlog, and connections
// that finish meanwhile free fds.
void serve(net::tcp_listener& l) {
  for (;;) {
    std::error_code ec;
    net::tcp_stream s = l.accept(ec);
    if (net::is_fd_exhaustion(ec)) {
      std::fprintf(stderr, "echo_server: accept: %s; retrying in 10 ms\n", ec.message().c_str());
      green::this_fiber::sleep_for(10ms);
      continue;
    }
    if (ec == std::errc::operation_canceled) return;  // the listener was closed
    if (ec) {
      std::fprintf(stderr, "echo_server: accept: %s\n", ec.message().c_str());
      continue;
    }
    green::spawn(serve_connection, std::move(s)).detach();
  }
}

// load() runs `clients` fibers against `to` for `seconds`; returns round trips.
long load(const net::address& to, int clients, double seconds) {
  std::atomic<bool> stop{false};
  std::atomic<long> trips{0};
  std::atomic<int> failed{0};
  std::vector<green::fiber<void>> fs;
  for (int i = 0; i < clients; ++i) {
    fs.push_back(green::spawn([&] {
      try {
        net::tcp_stream c = net::tcp_stream::connect(to, 5s);
        c.set_nodelay(true);
        char msg[64], back[64];
        std::memset(msg, 'x', sizeof msg);
        long n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          c.write_all(msg, sizeof msg);
          c.read_exact(back, sizeof back);
          ++n;
        }
        trips.fetch_add(n);
      } catch (const std::system_error& e) {
        if (failed.fetch_add(1) == 0) std::fprintf(stderr, "echo_server: client: %s\n", e.what());
      }
    }));
  }
  green::this_fiber::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& f : fs) f.join();
  if (failed.load() > 0) std::fprintf(stderr, "echo_server: %d clients failed\n", failed.load());
  return trips.load();
}

}  // namespace

int main(int argc, char** argv) {
  int port = -1, clients = 0;
  double seconds = 2;
  std::string connect_to;
  green::runtime_config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--port" && v) port = std::atoi(argv[++i]);
    else if (a == "--clients" && v) clients = std::atoi(argv[++i]);
    else if (a == "--seconds" && v) seconds = std::atof(argv[++i]);
    else if (a == "--connect" && v) connect_to = argv[++i];
    else if (a == "--workers" && v) cfg.workers = static_cast<unsigned>(std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--port P] [--clients N [--connect HOST:PORT] [--seconds S]] [--workers W]\n",
                   argv[0]);
      return 2;
    }
  }
  if (port < 0 && clients == 0) clients = 100;  // no arguments: the self-contained demo

  return green::run(
      [&] {
        net::tcp_listener l;
        green::fiber<void> server;
        net::address target;
        if (connect_to.empty()) {
          l = net::tcp_listener::bind(net::address::loopback_v4(static_cast<std::uint16_t>(port < 0 ? 0 : port)));
          std::printf("echo_server: listening on %s\n", l.address().to_string().c_str());
          std::fflush(stdout);
          if (clients == 0) {
            serve(l);
            return 0;
          }
          server = green::spawn(serve, std::ref(l));
          target = l.address();
        } else {
          auto colon = connect_to.rfind(':');
          target = net::resolve(connect_to.substr(0, colon), connect_to.substr(colon + 1)).front();
        }
        long trips = load(target, clients, seconds);
        std::printf("echo_server: %d clients, %.1f s: %ld round trips, %.0f round trips/s\n", clients, seconds, trips,
                    trips / seconds);
        if (server.joinable()) {
          l.close();
          server.join();
        }
        return trips > 0 ? 0 : 1;
      },
      cfg);
}
