// port_scan: a fan-out TCP connect scan — one fiber per port, at most
// --parallel connects in flight, each with its own timeout — that lists
// the open ports.
//
//   port_scan                        self-contained: opens a few listeners
//                                    on 127.0.0.1, scans the ports around them
//   port_scan --host 127.0.0.1 --from 1 --to 1024 [--timeout-ms 200] [--parallel 256]
#include <green/green.hpp>
#include <green/net.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace net = green::net;

int main(int argc, char** argv) {
  std::string host;
  int from = 0, to = 0, timeout_ms = 200, parallel = 256;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--host" && v) host = argv[++i];
    else if (a == "--from" && v) from = std::atoi(argv[++i]);
    else if (a == "--to" && v) to = std::atoi(argv[++i]);
    else if (a == "--timeout-ms" && v) timeout_ms = std::atoi(argv[++i]);
    else if (a == "--parallel" && v) parallel = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--host H --from P --to P] [--timeout-ms MS] [--parallel N]\n", argv[0]);
      return 2;
    }
  }

  return green::run([&] {
    // With no target, make one: listeners on 127.0.0.1 a few ports apart.
    std::vector<net::tcp_listener> own;
    if (host.empty()) {
      host = "127.0.0.1";
      own.push_back(net::tcp_listener::bind(net::address::loopback_v4(0)));
      int base = own.front().address().port();
      for (int offset : {3, 11, 17}) {
        std::error_code ec;
        auto l = net::tcp_listener::bind(net::address::loopback_v4(static_cast<std::uint16_t>(base + offset)), ec);
        if (!ec) own.push_back(std::move(l));
      }
      from = std::max(1, base - 20);
      to = std::min(65535, base + 40);
      std::printf("port_scan: opened %zu listeners on %s:", own.size(), host.c_str());
      for (auto& l : own) std::printf(" %d", l.address().port());
      std::printf("\n");
    }
    if (from < 1 || to > 65535 || from > to) {
      std::fprintf(stderr, "port_scan: bad port range %d-%d\n", from, to);
      return 2;
    }
    net::address target = net::resolve(host, "").front();
    std::printf("port_scan: scanning %s ports %d-%d, %d ms timeout, %d at a time\n", target.host().c_str(), from, to,
                timeout_ms, parallel);

    auto start = std::chrono::steady_clock::now();
    green::semaphore slots(static_cast<std::size_t>(parallel));  // bounds fds in use
    std::vector<green::fiber<bool>> probes;
    for (int p = from; p <= to; ++p) {
      probes.push_back(green::spawn([&, p] {
        slots.acquire();
        std::error_code ec;
        net::tcp_stream s = net::tcp_stream::connect(target.with_port(static_cast<std::uint16_t>(p)), ec,
                                                     std::chrono::milliseconds(timeout_ms));
        slots.release();
        return !ec;  // refused, timed out or unreachable: closed (or filtered)
      }));
    }
    std::vector<int> open;
    for (int p = from; p <= to; ++p)
      if (probes[static_cast<std::size_t>(p - from)].join()) open.push_back(p);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

    std::printf("port_scan: %zu open of %d in %.1f ms:", open.size(), to - from + 1, ms);
    for (int p : open) std::printf(" %d", p);
    std::printf("\n");
    if (own.empty()) return 0;
    // Self-check of the default run: exactly our listeners were found.
    for (auto& l : own)
      if (std::find(open.begin(), open.end(), l.address().port()) == open.end()) return 1;
    return 0;
  });
}
