// green::net::address — an IPv4 or IPv6 socket address (host and port).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace green::net {

// address is an IPv4 or IPv6 address and a port, or empty (family()
// AF_UNSPEC). A value type; comparisons compare family, host, port (and the
// IPv6 scope id).
class address {
 public:
  address() noexcept;

  // parse() reads "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80",
  // "fe80::1%2" (numeric scope id or an interface name). A port in the text
  // overrides `port`. Throws std::invalid_argument naming the text. Numeric
  // only: names go through resolve().
  static address parse(std::string_view text, std::uint16_t port = 0);
  // try_parse() is parse() returning nullopt instead of throwing.
  static std::optional<address> try_parse(std::string_view text, std::uint16_t port = 0) noexcept;

  // v4() / v6() build an address from a raw IP (v4: host byte order).
  static address v4(std::uint32_t host_order, std::uint16_t port = 0) noexcept;
  static address v6(const in6_addr& ip, std::uint16_t port = 0) noexcept;
  static address loopback_v4(std::uint16_t port = 0) noexcept;  // 127.0.0.1
  static address loopback_v6(std::uint16_t port = 0) noexcept;  // ::1
  static address any_v4(std::uint16_t port = 0) noexcept;       // 0.0.0.0
  static address any_v6(std::uint16_t port = 0) noexcept;       // ::

  // from_sockaddr() copies an AF_INET / AF_INET6 sockaddr; any other family
  // (or a short length) gives an empty address.
  static address from_sockaddr(const sockaddr* sa, socklen_t len) noexcept;

  int family() const noexcept { return u_.sa.sa_family; }
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  bool is_v4() const noexcept { return family() == AF_INET; }
  bool is_v6() const noexcept { return family() == AF_INET6; }
  bool is_loopback() const noexcept;

  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  address with_port(std::uint16_t port) const noexcept {
    address a = *this;
    a.set_port(port);
    return a;
  }

  // host() is the numeric host: "127.0.0.1", "::1", "fe80::1%2"; "" if empty.
  std::string host() const;
  // to_string() is host and port: "127.0.0.1:80", "[::1]:80"; "(none)" if empty.
  std::string to_string() const;

  const sockaddr* data() const noexcept { return &u_.sa; }
  socklen_t size() const noexcept;

  friend bool operator==(const address& a, const address& b) noexcept;

 private:
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } u_;
};

std::ostream& operator<<(std::ostream& out, const address& a);

}  // namespace green::net
