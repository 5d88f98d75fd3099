// Name resolution on the OS-thread fallback.
//
// getaddrinfo() and the gethostbyname family block in glibc's resolver,
// which calls its own internal poll/sendto/recvfrom that no interposer
// sees. On a fiber they run on a small pool of OS threads while the fiber
// parks (gevent's resolver_thread; asyncio's getaddrinfo in an executor).
//
// Protocol: the caller opens a park, queues a job and parks; the pool
// thread runs the call into job-owned storage, then, under the job's lock,
// marks it done and wakes the ticket. A killed (or timed-out) caller marks
// the job abandoned under the same lock and leaves; the pool thread then
// frees what the call produced. Results are copied out only on success, so
// an abandoned job never writes into the caller's memory.
//
// This is the patch library's own pool rather than green::to_thread: the
// library must not depend on symbols of fibers/ beyond the scheduler seam
// (it is loaded into programs that may link any greenfiber version, or
// none). Threads are started on demand, at most kMaxThreads, and stay:
// lookups are rare next to I/O, and 16 concurrent lookups already exceed
// what a resolver's UDP exchange with one server gains from parallelism.
#include <netdb.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "patch_detail.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(getaddrinfo);
GREEN_DEFINE_REAL(getnameinfo);
GREEN_DEFINE_REAL(gethostbyname);
GREEN_DEFINE_REAL(gethostbyname2);
GREEN_DEFINE_REAL(gethostbyaddr);
GREEN_DEFINE_REAL(gethostbyname_r);
GREEN_DEFINE_REAL(gethostbyname2_r);
GREEN_DEFINE_REAL(gethostbyaddr_r);

namespace {

constexpr unsigned kMaxThreads = 16;

struct job {
  std::function<void()> run;      // pool thread: the blocking call, into job-owned storage
  std::function<void()> discard;  // pool thread: free the results of an abandoned job
  std::mutex mu;
  sched::ticket t;  // guarded by mu
  int state = 0;    // guarded by mu: 0 pending, 1 done, 2 abandoned
};

// Invariants: queue_ holds jobs no thread has taken; idle_ counts threads
// blocked in cv_.wait; threads_ <= kMaxThreads.
class pool {
 public:
  // submit() queues j, starting a thread if none is idle. Any thread.
  void submit(std::shared_ptr<job> j) {
    std::unique_lock lk(mu_);
    queue_.push_back(std::move(j));
    if (idle_ == 0 && threads_ < kMaxThreads) {
      ++threads_;
      std::thread([this] { loop(); }).detach();
    } else {
      cv_.notify_one();
    }
  }

 private:
  void loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lk, [&] { return !queue_.empty(); });
      --idle_;
      std::shared_ptr<job> j = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      j->run();
      bool abandoned;
      {
        std::lock_guard jl(j->mu);
        abandoned = j->state == 2;
        if (!abandoned) {
          j->state = 1;
          sched::wake(j->t, sched::wake_reason::notified);
        }
      }
      if (abandoned && j->discard) j->discard();
      lk.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<job>> queue_;
  unsigned idle_ = 0;
  unsigned threads_ = 0;
};

pool& the_pool() {
  static pool* p = new pool;  // never destroyed: detached threads use it until exit
  return *p;
}

// offload() runs j on the pool and parks until it is done (true) or the
// fiber is killed / its green::timeout scope expires (false; the job is
// abandoned; a kill is re-armed for the next green suspension point, see
// ended_by()). Fiber context only.
bool offload(const std::shared_ptr<job>& j, const char* what) {
  n_offloads.fetch_add(1, std::memory_order_relaxed);
  sched::ticket t = sched::prepare_park();
  {
    std::lock_guard jl(j->mu);
    j->t = t;
  }
  the_pool().submit(j);
  for (;;) {
    sched::wake_reason r = ended_by(green::detail::scoped_park(t, what, sched::no_deadline));
    std::lock_guard jl(j->mu);  // after this, the pool thread no longer touches the ticket
    if (j->state == 1) return true;
    if (r == sched::wake_reason::killed || r == sched::wake_reason::scope_timeout) {
      j->state = 2;
      return false;
    }
    // a stray wake of this park: park again on a fresh ticket
    t = sched::prepare_park();
    j->t = t;
  }
}

// hostent_copy() copies a hostent whose pointers all point into `from`
// (the *_r contract) to `to`, relocating the pointers.
void hostent_copy(hostent* dst, const hostent& src, char* to, const char* from, size_t len) {
  std::memcpy(to, from, len);
  auto fix = [&](auto* p) {
    return p ? reinterpret_cast<decltype(p)>(to + (reinterpret_cast<const char*>(p) - from)) : p;
  };
  *dst = src;
  dst->h_name = fix(src.h_name);
  dst->h_aliases = fix(src.h_aliases);
  dst->h_addr_list = fix(src.h_addr_list);
  if (dst->h_aliases)
    for (char** a = dst->h_aliases; *a; ++a) *a = fix(*a);
  if (dst->h_addr_list)
    for (char** a = dst->h_addr_list; *a; ++a) *a = fix(*a);
}

// Shared by the gethostbyname*_r family: run `call` into a job-owned
// buffer of the caller's size, then copy and relocate into the caller's.
template <class Call>
int hostent_r(hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop, Call call, const char* what) {
  struct out_t {
    hostent he{};
    std::vector<char> buf;
    hostent* res = nullptr;
    int herr = 0;
    int rc = 0;
  };
  auto out = std::make_shared<out_t>();
  out->buf.resize(buflen);
  auto j = std::make_shared<job>();
  j->run = [out, call] { out->rc = call(&out->he, out->buf.data(), out->buf.size(), &out->res, &out->herr); };
  if (!offload(j, what)) {
    *result = nullptr;
    if (h_errnop) *h_errnop = TRY_AGAIN;
    return ECANCELED;
  }
  if (h_errnop) *h_errnop = out->herr;
  if (out->res) {
    hostent_copy(ret, out->he, buf, out->buf.data(), buflen);
    *result = ret;
  } else {
    *result = nullptr;
  }
  return out->rc;
}

}  // namespace
}  // namespace green::patch::detail

using namespace green::patch::detail;  // NOLINT: the library's C face

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (!on_fiber()) return GREEN_REAL(getaddrinfo)(node, service, hints, res);
  struct out_t {
    std::string node, service;
    bool has_node, has_service, has_hints;
    addrinfo hints{};
    addrinfo* res = nullptr;
    int rc = 0;
    int err = 0;
  };
  auto out = std::make_shared<out_t>();
  out->has_node = node != nullptr;
  out->has_service = service != nullptr;
  out->has_hints = hints != nullptr;
  if (node) out->node = node;
  if (service) out->service = service;
  if (hints) out->hints = *hints;
  auto j = std::make_shared<job>();
  j->run = [out] {
    out->rc = GREEN_REAL(getaddrinfo)(out->has_node ? out->node.c_str() : nullptr,
                                      out->has_service ? out->service.c_str() : nullptr,
                                      out->has_hints ? &out->hints : nullptr, &out->res);
    out->err = get_errno();
  };
  j->discard = [out] {
    if (out->rc == 0 && out->res) freeaddrinfo(out->res);
  };
  if (!offload(j, "patch:getaddrinfo")) {
    set_errno(ECANCELED);
    return EAI_SYSTEM;
  }
  if (out->rc == 0) *res = out->res;
  if (out->rc == EAI_SYSTEM) set_errno(out->err);
  return out->rc;
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) {
  if (!on_fiber()) return GREEN_REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
  struct out_t {
    sockaddr_storage sa{};
    std::vector<char> host, serv;
    int rc = 0, err = 0;
  };
  auto out = std::make_shared<out_t>();
  std::memcpy(&out->sa, sa, std::min<size_t>(salen, sizeof out->sa));
  out->host.resize(host ? hostlen : 0);
  out->serv.resize(serv ? servlen : 0);
  auto j = std::make_shared<job>();
  bool h = host != nullptr, s = serv != nullptr;
  j->run = [out, salen, h, s, flags] {
    out->rc = GREEN_REAL(getnameinfo)(reinterpret_cast<const sockaddr*>(&out->sa), salen,
                                      h ? out->host.data() : nullptr, static_cast<socklen_t>(out->host.size()),
                                      s ? out->serv.data() : nullptr, static_cast<socklen_t>(out->serv.size()), flags);
    out->err = get_errno();
  };
  if (!offload(j, "patch:getnameinfo")) {
    set_errno(ECANCELED);
    return EAI_SYSTEM;
  }
  if (out->rc == 0) {
    if (h && hostlen) std::memcpy(host, out->host.data(), hostlen);
    if (s && servlen) std::memcpy(serv, out->serv.data(), servlen);
  }
  if (out->rc == EAI_SYSTEM) set_errno(out->err);
  return out->rc;
}

// The non-reentrant family returns libc's static storage, shared by every
// thread, so the pointer a pool thread got is the caller's answer too;
// h_errno is per thread and is copied back.
static hostent* hostent_static(std::function<hostent*()> call, const char* what) {
  struct out_t {
    hostent* res = nullptr;
    int herr = 0;
  };
  auto out = std::make_shared<out_t>();
  auto j = std::make_shared<job>();
  j->run = [out, call = std::move(call)] {
    out->res = call();
    out->herr = h_errno;
  };
  if (!offload(j, what)) {
    set_h_errno(TRY_AGAIN);
    return nullptr;
  }
  set_h_errno(out->herr);
  return out->res;
}

hostent* gethostbyname(const char* name) {
  if (!on_fiber()) return GREEN_REAL(gethostbyname)(name);
  std::string n = name ? name : "";
  return hostent_static([n] { return GREEN_REAL(gethostbyname)(n.c_str()); }, "patch:gethostbyname");
}

hostent* gethostbyname2(const char* name, int af) {
  if (!on_fiber()) return GREEN_REAL(gethostbyname2)(name, af);
  std::string n = name ? name : "";
  return hostent_static([n, af] { return GREEN_REAL(gethostbyname2)(n.c_str(), af); }, "patch:gethostbyname2");
}

hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
  if (!on_fiber()) return GREEN_REAL(gethostbyaddr)(addr, len, type);
  std::string a(static_cast<const char*>(addr), len);
  return hostent_static([a, len, type] { return GREEN_REAL(gethostbyaddr)(a.data(), len, type); },
                        "patch:gethostbyaddr");
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop) {
  if (!on_fiber()) return GREEN_REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
  std::string n = name ? name : "";
  return hostent_r(
      ret, buf, buflen, result, h_errnop,
      [n](hostent* r, char* b, size_t l, hostent** res, int* he) {
        return GREEN_REAL(gethostbyname_r)(n.c_str(), r, b, l, res, he);
      },
      "patch:gethostbyname_r");
}

int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, size_t buflen, hostent** result,
                     int* h_errnop) {
  if (!on_fiber()) return GREEN_REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
  std::string n = name ? name : "";
  return hostent_r(
      ret, buf, buflen, result, h_errnop,
      [n, af](hostent* r, char* b, size_t l, hostent** res, int* he) {
        return GREEN_REAL(gethostbyname2_r)(n.c_str(), af, r, b, l, res, he);
      },
      "patch:gethostbyname2_r");
}

int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, size_t buflen, hostent** result,
                    int* h_errnop) {
  if (!on_fiber()) return GREEN_REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
  std::string a(static_cast<const char*>(addr), len);
  return hostent_r(
      ret, buf, buflen, result, h_errnop,
      [a, len, type](hostent* r, char* b, size_t l, hostent** res, int* he) {
        return GREEN_REAL(gethostbyaddr_r)(a.data(), len, type, r, b, l, res, he);
      },
      "patch:gethostbyaddr_r");
}

}  // extern "C"
