// green::net::resolve: numeric fast paths inline, getaddrinfo() on the
// OS-thread pool otherwise (it blocks: DNS, /etc/hosts, NSS modules).
//
// Rejected: an asynchronous DNS client (c-ares, getaddrinfo_a) — it would
// skip /etc/nsswitch.conf's other sources (mDNS, LDAP, systemd-resolved's
// NSS module) that programs expect getaddrinfo() to honour; gevent keeps the
// thread-pool resolver as its default for the same reason.
#include "green/net/resolve.hpp"

#include <netdb.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "green/threadpool.hpp"

namespace green::net {

namespace {

class resolve_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int c) const override { return ::gai_strerror(c); }
  std::error_condition default_error_condition(int c) const noexcept override {
    if (c == EAI_MEMORY) return std::errc::not_enough_memory;
    if (c == EAI_FAMILY) return std::errc::address_family_not_supported;
    return {c, *this};
  }
};

// lookup is what a getaddrinfo() call returns: addresses or an error.
struct lookup {
  std::vector<address> addrs;
  std::error_code ec;
};

lookup run_getaddrinfo(const std::string& host, const std::string& service, int family, int flags) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address instead of one per socket type
  hints.ai_flags = flags;
  addrinfo* res = nullptr;
  lookup out;
  int rc =
      ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.empty() ? nullptr : service.c_str(), &hints, &res);
  if (rc == EAI_SYSTEM) out.ec.assign(errno, std::system_category());
  else if (rc != 0) out.ec.assign(rc, resolve_category());
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    address a = address::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    if (!a.empty() && std::find(out.addrs.begin(), out.addrs.end(), a) == out.addrs.end()) out.addrs.push_back(a);
  }
  if (res) ::freeaddrinfo(res);
  if (!out.ec && out.addrs.empty()) out.ec.assign(EAI_NONAME, resolve_category());
  return out;
}

bool numeric_port(std::string_view s, std::uint16_t& port) {
  if (s.empty()) {
    port = 0;
    return true;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

bool family_matches(const address& a, int family) { return family == AF_UNSPEC || a.family() == family; }

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const resolve_error_category c;
  return c;
}

std::vector<address> resolve(std::string_view host, std::string_view service, std::error_code& ec, deadline d,
                             int family) {
  ec.clear();
  std::uint16_t port = 0;
  bool num_port = numeric_port(service, port);
  std::optional<address> num_host = host.empty() ? std::nullopt : address::try_parse(host);
  if (num_host && host.find(':') != host.npos && host.front() != '[' && !num_host->is_v6())
    num_host.reset();          // "1.2.3.4:80" is not a host
  if (num_host && num_port) {  // fast path 1: no lookup at all
    if (!family_matches(*num_host, family)) {
      ec.assign(EAI_FAMILY, resolve_category());
      return {};
    }
    return {num_host->with_port(port)};
  }
  std::string h(host), s(service);
  lookup r;
  if (num_host) {  // fast path 2: a service name only (/etc/services, a local file)
    r = run_getaddrinfo(h, s, family, AI_NUMERICHOST);
  } else {
    auto call = threadpool::default_pool().spawn(run_getaddrinfo, h, s, family, 0);
    if (!call.wait_until(d.when())) {
      ec = std::make_error_code(std::errc::timed_out);
      return {};
    }
    r = call.get();
  }
  ec = r.ec;
  return std::move(r.addrs);
}

std::vector<address> resolve(std::string_view host, std::string_view service, deadline d, int family) {
  std::error_code ec;
  std::vector<address> out = resolve(host, service, ec, d, family);
  if (ec) {
    std::string what = "green::net: resolve ";
    what.append(host).append(":").append(service);
    throw std::system_error(ec, what);
  }
  return out;
}

}  // namespace green::net
