// green::net::udp_socket. Waiting and closing: socket.cpp's protocol.
#include "green/net/udp_socket.hpp"

#include <sys/socket.h>

namespace green::net {

udp_socket udp_socket::open(int family) {
  udp_socket s;
  std::error_code ec;
  s.socket::open(family, SOCK_DGRAM, ec);
  check(ec, "socket(SOCK_DGRAM)", {});
  return s;
}

udp_socket udp_socket::bind(const address& at, std::error_code& ec, bool reuse_port) {
  udp_socket s;
  s.open_bound(at, SOCK_DGRAM, {false, reuse_port, {}}, ec);
  if (!ec) s.local_ = s.local_address();
  return s;
}

udp_socket udp_socket::bind(const address& at, bool reuse_port) {
  return or_throw("bind", at, [&](std::error_code& ec) { return bind(at, ec, reuse_port); });
}

std::size_t udp_socket::send_to(const void* buf, std::size_t n, const address& to, std::error_code& ec, deadline d) {
  return send_(buf, n, &to, d, ec);
}

std::size_t udp_socket::send_to(const void* buf, std::size_t n, const address& to, deadline d) {
  return or_throw("send_to", to, [&](std::error_code& ec) { return send_to(buf, n, to, ec, d); });
}

std::size_t udp_socket::receive_from(void* buf, std::size_t n, address& from, std::error_code& ec, deadline d) {
  return receive_(buf, n, &from, d, ec);
}

std::size_t udp_socket::receive_from(void* buf, std::size_t n, address& from, deadline d) {
  return or_throw("receive_from", local_, [&](std::error_code& ec) { return receive_from(buf, n, from, ec, d); });
}

void udp_socket::connect(const address& to, std::error_code& ec) {
  ec.clear();
  use u(*this);
  if (!u.ok()) bad_fd(ec);
  else if (::connect(fd_, to.data(), to.size()) != 0) ec.assign(errno, std::system_category());
  else peer_ = to;
}

void udp_socket::connect(const address& to) {
  std::error_code ec;
  connect(to, ec);
  check(ec, "connect", to);
}

std::size_t udp_socket::send(const void* buf, std::size_t n, std::error_code& ec, deadline d) {
  return send_(buf, n, nullptr, d, ec);
}

std::size_t udp_socket::send(const void* buf, std::size_t n, deadline d) {
  return or_throw("send", peer_, [&](std::error_code& ec) { return send(buf, n, ec, d); });
}

std::size_t udp_socket::receive(void* buf, std::size_t n, std::error_code& ec, deadline d) {
  return receive_(buf, n, nullptr, d, ec);
}

std::size_t udp_socket::receive(void* buf, std::size_t n, deadline d) {
  return or_throw("receive", peer_, [&](std::error_code& ec) { return receive(buf, n, ec, d); });
}

void udp_socket::set_broadcast(bool on) { set_option(SOL_SOCKET, SO_BROADCAST, on, "setsockopt SO_BROADCAST"); }

}  // namespace green::net
