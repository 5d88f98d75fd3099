// UptimeSquirrel: which of 1,000 sites are down? Unmodified blocking
// libcurl (easy API, HEAD, 2 s timeout) checked serially, on P std::threads
// and on a pool of P fibers (green::patch makes libcurl's blocking calls
// park the fiber), P = 10, 100, 1000. Each run is its own process (this
// program re-executed), so its CPU time and peak RSS are its own; the test
// HTTP server is another. All runs must find the same set of down URLs.
//
//   uptime_squirrel                 all runs
//   uptime_squirrel fibers 1000     one run beside the server (threads | fibers)
//   uptime_squirrel --json [--quick]  also print one JSON line per number
//                                   (bench/compare); --quick: P = 100, 1000 only
#include <curl/curl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <green/green.hpp>
#include <green/net.hpp>
#include <green/patch.hpp>

namespace {

// ---------------------------------------------------------------------------
// The test server: /ok 200, /missing 404, /error 500, /slow/<ms> 200 after
// a delay; anything else 404. One fiber per connection, on green::net.

namespace net = green::net;

void serve_one(net::tcp_stream s) {
  char buf[2048];
  std::size_t len = 0;
  std::error_code ec;
  while (len < sizeof buf - 1) {
    std::size_t r = s.read_some(buf + len, sizeof buf - 1 - len, ec);
    if (ec || r == 0) return;  // reset or closed before a whole request: nothing to answer
    len += r;
    buf[len] = 0;
    if (std::strstr(buf, "\r\n\r\n")) break;
  }
  buf[len] = 0;
  char method[16] = {}, path[512] = {};
  std::sscanf(buf, "%15s %511s", method, path);
  if (char* q = std::strchr(path, '?')) *q = 0;  // the query string only tells the sites apart
  int code = 404;
  const char* text = "Not Found";
  if (!std::strcmp(path, "/ok")) code = 200, text = "OK";
  else if (!std::strcmp(path, "/error")) code = 500, text = "Internal Server Error";
  else if (!std::strncmp(path, "/slow/", 6)) {
    green::this_fiber::sleep_for(std::chrono::milliseconds(std::atoi(path + 6)));
    code = 200, text = "OK";
  }
  char resp[256];
  int n =
      std::snprintf(resp, sizeof resp, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, text);
  s.write_all(resp, static_cast<std::size_t>(n), ec);  // a client that gave up: nothing to do
}

[[noreturn]] void run_server(net::tcp_listener& l, int ready_fd) {
  green::runtime_config cfg;
  cfg.workers = 1;
  green::runtime rt(cfg);
  rt.run([&] {
    char c = 'R';
    if (::write(ready_fd, &c, 1) != 1) std::exit(1);
    ::close(ready_fd);
    for (;;) {
      std::error_code ec;
      net::tcp_stream s = l.accept(ec);
      if (!ec) green::spawn(serve_one, std::move(s)).detach();
      else if (net::is_fd_exhaustion(ec)) green::this_fiber::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::exit(0);
}

// ---------------------------------------------------------------------------
// The checker: plain blocking libcurl.

std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }

// is_down() is the tutorial's check: a status >= 400 or any error.
bool is_down(const std::string& url) {
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);  // HEAD
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  // A HEAD check reads only headers: a 1 KiB receive buffer instead of
  // libcurl's 16 KiB default (every mode, threads and fibers alike; at
  // P = 1000 that is ~4 MiB of the peak RSS).
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 1024L);
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return rc != CURLE_OK || code >= 400;
}

std::vector<std::string> make_urls(int port, int closed_port) {
  std::vector<std::string> urls;
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  for (int i = 0; i < 1000; ++i) {
    if (i == 333 || i == 777)
      urls.push_back("http://127.0.0.1:" + std::to_string(closed_port) + "/ok?site=" + std::to_string(i));
    else if (i % 50 == 7) urls.push_back(base + "/missing?site=" + std::to_string(i));
    else if (i % 50 == 23) urls.push_back(base + "/error?site=" + std::to_string(i));
    else if (i % 25 == 11) urls.push_back(base + "/ok?site=" + std::to_string(i));
    else urls.push_back(base + "/slow/50?site=" + std::to_string(i));
  }
  return urls;
}

// check_all() runs `n` checkers (threads or fibers) pulling URLs from a
// shared index; returns the down set.
template <class Start>
std::set<std::string> check_all(const std::vector<std::string>& urls, std::size_t count, int n, Start start) {
  std::atomic<std::size_t> next{0};
  std::vector<char> down(count, 0);
  start(n, [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < count;) down[i] = is_down(urls[i]);
  });
  std::set<std::string> s;
  for (std::size_t i = 0; i < count; ++i)
    if (down[i]) s.insert(urls[i]);
  return s;
}

// One run, in its own process; prints the down set, one URL a line, then
// the wall time.
int run_mode(const std::string& mode, int p, int port, int closed_port) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto urls = make_urls(port, closed_port);
  auto t0 = std::chrono::steady_clock::now();
  std::set<std::string> down;
  if (mode == "serial") {
    down = check_all(urls, 100, 1, [](int, auto body) { body(); });
  } else if (mode == "threads") {
    down = check_all(urls, urls.size(), p, [](int n, auto body) {
      std::vector<std::thread> ts;
      for (int i = 0; i < n; ++i) ts.emplace_back(body);
      for (auto& t : ts) t.join();
    });
  } else {
    green::runtime rt;
    rt.run([&] {
      down = check_all(urls, urls.size(), p, [](int n, auto body) {
        std::vector<green::fiber<void>> fs;
        for (int i = 0; i < n; ++i) fs.push_back(green::spawn(body));
        for (auto& f : fs) f.join();
      });
    });
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& u : down) std::printf("%s\n", u.c_str());
  std::printf("wall %.6f\n", wall);
  curl_global_cleanup();
  return 0;
}

struct result {
  double wall = 0, cpu = 0;
  long rss_kb = 0;
  std::set<std::string> down;
};

// spawn_run() re-executes this program for one run and collects what it
// printed plus its rusage (CPU time, peak RSS).
result spawn_run(const char* self, const std::string& mode, int p, int port, int closed_port) {
  int pfd[2];
  if (::pipe(pfd) != 0) std::exit(1);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pfd[1], 1);
    ::close(pfd[0]);
    ::close(pfd[1]);
    std::string ps = std::to_string(p), po = std::to_string(port), pc = std::to_string(closed_port);
    ::execl(self, self, mode.c_str(), ps.c_str(), po.c_str(), pc.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(pfd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t r; (r = ::read(pfd[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(r));
  ::close(pfd[0]);
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  result res;
  res.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  res.rss_kb = ru.ru_maxrss;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl - pos);
    pos = nl == std::string::npos ? out.size() : nl + 1;
    if (line.rfind("wall ", 0) == 0) res.wall = std::atof(line.c_str() + 5);
    else if (!line.empty()) res.down.insert(line);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::fprintf(stderr, "run %s %d failed\n", mode.c_str(), p);
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5) return run_mode(argv[1], std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]));
  bool json = false, quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) json = true;
    else if (std::strcmp(argv[i], "--quick") == 0) quick = true;
  }
  if (json || quick) argc = 1;
  if (!green::patch::runtime_found()) std::fprintf(stderr, "warning: green::patch found no runtime\n");

  // A closed port: bind one, note it, close it.
  const int closed_port = net::tcp_listener::bind(net::address::loopback_v4()).local_address().port();
  net::listen_options opts;
  opts.backlog = 4096;  // 1,000 connections arrive at once
  auto listener = net::tcp_listener::bind(net::address::loopback_v4(), opts);
  const int port = listener.local_address().port();
  int ready[2];
  if (::pipe(ready) != 0) return 1;
  pid_t server = ::fork();
  if (server == 0) {
    ::close(ready[0]);
    run_server(listener, ready[1]);
  }
  listener.close();
  ::close(ready[1]);
  char c;
  if (::read(ready[0], &c, 1) != 1) return 1;
  ::close(ready[0]);

  std::printf("UptimeSquirrel: 1,000 URLs (mostly /slow/50), HEAD, 2 s timeout; server on port %d\n", port);
  std::printf("%-22s %9s %9s %9s %6s\n", "run", "wall s", "CPU s", "RSS MB", "down");
  const char* self = "/proc/self/exe";
  std::string self_path(4096, '\0');
  ssize_t sl = ::readlink(self, self_path.data(), self_path.size() - 1);
  self_path.resize(sl > 0 ? static_cast<std::size_t>(sl) : 0);

  std::set<std::string> reference;
  bool all_equal = true;
  auto report = [&](const std::string& name, result r, double scale, std::size_t count) {
    // The serial run checks the first 100 URLs; its time and down set are
    // scaled up to 1,000 by the same share.
    std::printf("%-22s %9.3f %9.3f %9.1f %6zu%s\n", name.c_str(), r.wall * scale, r.cpu * scale, r.rss_kb / 1024.0,
                r.down.size(), scale != 1 ? "  (first 100, x10)" : "");
    if (json) {
      // impl "green fibers P=1000" / "threads P=1000"; group pairs them.
      std::string impl = (name.rfind("fibers", 0) == 0 ? "green " : "") + name;
      std::string group = name.find("P=") != std::string::npos ? name.substr(name.find("P=")) : "";
      const char* fmt =
          "{\"workload\": \"uptime 1000 URLs\", \"metric\": \"%s\", \"impl\": \"%s\", \"group\": \"%s\", "
          "\"value\": %.6g, \"unit\": \"%s\", \"lower_better\": true}\n";
      std::printf(fmt, "wall", impl.c_str(), group.c_str(), r.wall * scale, "s wall");
      std::printf(fmt, "CPU", impl.c_str(), group.c_str(), r.cpu * scale, "CPU-s");
      std::printf(fmt, "peak RSS", impl.c_str(), group.c_str(), r.rss_kb / 1024.0, "MiB peak RSS");
    }
    std::set<std::string> first;
    for (auto& u : reference) first.insert(u);
    if (count == 100) {
      std::set<std::string> expect;
      auto urls = make_urls(port, closed_port);
      for (std::size_t i = 0; i < 100; ++i)
        if (reference.count(urls[i])) expect.insert(urls[i]);
      if (!reference.empty() && expect != r.down) all_equal = false;
    } else if (reference.empty()) {
      reference = r.down;
    } else if (reference != r.down) {
      all_equal = false;
    }
    std::fflush(stdout);
  };
  std::vector<std::pair<std::string, int>> runs;
  bool one = argc == 3;  // uptime_squirrel fibers 1000: that run only
  if (one) runs.emplace_back(argv[1], std::atoi(argv[2]));
  std::vector<int> ps = quick ? std::vector<int>{100, 1000} : std::vector<int>{10, 100, 1000};
  for (int p : ps)
    if (!one) runs.emplace_back("threads", p);
  for (int p : ps)
    if (!one) runs.emplace_back("fibers", p);
  result serial;
  if (!one && !quick) serial = spawn_run(self_path.c_str(), "serial", 1, port, closed_port);
  for (auto& [mode, p] : runs) {
    result r = spawn_run(self_path.c_str(), mode, p, port, closed_port);
    report(mode + " P=" + std::to_string(p), r, 1, 1000);
  }
  if (!one && !quick) report("serial", serial, 10, 100);
  std::printf("down set (%zu):", reference.size());
  for (auto& u : reference) std::printf(" %s", u.substr(u.find("site=") + 5).c_str());
  std::printf("\nall runs found the same set: %s\n", all_equal ? "yes" : "NO");
  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  return all_equal ? 0 : 1;
}
