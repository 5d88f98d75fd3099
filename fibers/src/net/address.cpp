// green::net::address: numeric parsing and formatting (inet_pton/inet_ntop).
#include "green/net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstring>
#include <ostream>
#include <stdexcept>

namespace green::net {

address::address() noexcept { std::memset(&u_, 0, sizeof u_); }

namespace {

bool parse_u32(std::string_view s, std::uint32_t max, std::uint32_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

// parse_host() parses a bare numeric host (no brackets, no port).
bool parse_host(std::string_view host, address& out) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (host.empty() || host.size() >= sizeof buf) return false;
  std::string_view scope;
  if (auto pct = host.find('%'); pct != std::string_view::npos) {
    scope = host.substr(pct + 1);
    host = host.substr(0, pct);
  }
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  sockaddr_in v4{};
  if (scope.empty() && ::inet_pton(AF_INET, buf, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    out = address::from_sockaddr(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
    return true;
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, buf, &v6.sin6_addr) != 1) return false;
  v6.sin6_family = AF_INET6;
  if (!scope.empty()) {
    std::uint32_t id = 0;
    if (!parse_u32(scope, UINT32_MAX, id)) {
      std::string name(scope);
      id = ::if_nametoindex(name.c_str());
      if (id == 0) return false;
    }
    v6.sin6_scope_id = id;
  }
  out = address::from_sockaddr(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
  return true;
}

}  // namespace

std::optional<address> address::try_parse(std::string_view text, std::uint16_t port) noexcept {
  address a;
  std::string_view host = text;
  std::optional<std::uint16_t> text_port;
  if (!text.empty() && text.front() == '[') {  // [v6]:port or [v6]
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      std::uint32_t p = 0;
      if (rest.front() != ':' || !parse_u32(rest.substr(1), 65535, p)) return std::nullopt;
      text_port = static_cast<std::uint16_t>(p);
    }
    if (!parse_host(host, a) || !a.is_v6()) return std::nullopt;
  } else if (auto colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == text.npos) {
    std::uint32_t p = 0;  // exactly one colon: v4:port
    if (!parse_u32(text.substr(colon + 1), 65535, p)) return std::nullopt;
    text_port = static_cast<std::uint16_t>(p);
    if (!parse_host(text.substr(0, colon), a) || !a.is_v4()) return std::nullopt;
  } else if (!parse_host(host, a)) {
    return std::nullopt;
  }
  a.set_port(text_port.value_or(port));
  return a;
}

address address::parse(std::string_view text, std::uint16_t port) {
  if (auto a = try_parse(text, port)) return *a;
  throw std::invalid_argument("green::net::address: \"" + std::string(text) +
                              "\" is not a numeric IPv4 or IPv6 address (names go through green::net::resolve)");
}

address address::v4(std::uint32_t host_order, std::uint16_t port) noexcept {
  address a;
  a.u_.v4.sin_family = AF_INET;
  a.u_.v4.sin_addr.s_addr = htonl(host_order);
  a.set_port(port);
  return a;
}
address address::v6(const in6_addr& ip, std::uint16_t port) noexcept {
  address a;
  a.u_.v6.sin6_family = AF_INET6;
  a.u_.v6.sin6_addr = ip;
  a.set_port(port);
  return a;
}
address address::loopback_v4(std::uint16_t port) noexcept { return v4(INADDR_LOOPBACK, port); }
address address::loopback_v6(std::uint16_t port) noexcept { return v6(in6addr_loopback, port); }
address address::any_v4(std::uint16_t port) noexcept { return v4(INADDR_ANY, port); }
address address::any_v6(std::uint16_t port) noexcept { return v6(in6addr_any, port); }

address address::from_sockaddr(const sockaddr* sa, socklen_t len) noexcept {
  address a;
  if (sa == nullptr) return a;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in)))
    std::memcpy(&a.u_.v4, sa, sizeof(sockaddr_in));
  else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6)))
    std::memcpy(&a.u_.v6, sa, sizeof(sockaddr_in6));
  return a;
}

bool address::is_loopback() const noexcept {
  if (is_v4()) return (ntohl(u_.v4.sin_addr.s_addr) >> 24) == 127;
  if (is_v6()) return IN6_IS_ADDR_LOOPBACK(&u_.v6.sin6_addr);
  return false;
}

std::uint16_t address::port() const noexcept {
  if (is_v4()) return ntohs(u_.v4.sin_port);
  if (is_v6()) return ntohs(u_.v6.sin6_port);
  return 0;
}

void address::set_port(std::uint16_t port) noexcept {
  if (is_v4()) u_.v4.sin_port = htons(port);
  else if (is_v6()) u_.v6.sin6_port = htons(port);
}

socklen_t address::size() const noexcept {
  if (is_v4()) return sizeof(sockaddr_in);
  if (is_v6()) return sizeof(sockaddr_in6);
  return 0;
}

std::string address::host() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) return ::inet_ntop(AF_INET, &u_.v4.sin_addr, buf, sizeof buf);
  if (!is_v6()) return "";
  std::string s = ::inet_ntop(AF_INET6, &u_.v6.sin6_addr, buf, sizeof buf);
  if (u_.v6.sin6_scope_id != 0) {
    s += '%';
    s += std::to_string(u_.v6.sin6_scope_id);
  }
  return s;
}

std::string address::to_string() const {
  if (empty()) return "(none)";
  std::string s;
  if (is_v6()) s += '[';
  s += host();
  if (is_v6()) s += ']';
  s += ':';
  s += std::to_string(port());
  return s;
}

bool operator==(const address& a, const address& b) noexcept {
  if (a.family() != b.family()) return false;
  if (a.is_v4()) return a.u_.v4.sin_addr.s_addr == b.u_.v4.sin_addr.s_addr && a.u_.v4.sin_port == b.u_.v4.sin_port;
  if (a.is_v6())
    return std::memcmp(&a.u_.v6.sin6_addr, &b.u_.v6.sin6_addr, sizeof(in6_addr)) == 0 &&
           a.u_.v6.sin6_port == b.u_.v6.sin6_port && a.u_.v6.sin6_scope_id == b.u_.v6.sin6_scope_id;
  return true;
}

std::ostream& operator<<(std::ostream& out, const address& a) { return out << a.to_string(); }

}  // namespace green::net
