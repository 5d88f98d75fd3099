// green::net::udp_socket — a UDP socket whose calls park the fiber.
#pragma once

#include <cstddef>
#include <system_error>

#include "green/net/socket.hpp"

namespace green::net {

// udp_socket sends and receives datagrams. Move-only; the destructor closes
// it. Blocking calls take a per-call deadline and report socket.hpp's
// outcomes; a datagram larger than the buffer is truncated to it.
class udp_socket : public socket {
 public:
  udp_socket() noexcept = default;

  // open() makes an unbound socket of `family` (AF_INET / AF_INET6); the
  // first send_to() binds it to an ephemeral port. Throws std::system_error.
  static udp_socket open(int family);
  // bind() opens a socket of the address's family and binds it (port 0:
  // ephemeral). reuse_port sets SO_REUSEPORT. Throws std::system_error
  // naming "bind" and the address.
  static udp_socket bind(const address& at, bool reuse_port = false);
  static udp_socket bind(const address& at, std::error_code& ec, bool reuse_port = false);

  // send_to() sends one datagram of n bytes to `to`; returns n.
  std::size_t send_to(const void* buf, std::size_t n, const address& to, deadline d = {});
  std::size_t send_to(const void* buf, std::size_t n, const address& to, std::error_code& ec, deadline d = {});
  // receive_from() waits for one datagram, stores up to n bytes of it and
  // its sender; returns the bytes stored (0 for an empty datagram). With
  // n == 0 it still waits for a datagram, and drops it (unlike a stream's
  // zero-byte read: a datagram is consumed whole).
  std::size_t receive_from(void* buf, std::size_t n, address& from, deadline d = {});
  std::size_t receive_from(void* buf, std::size_t n, address& from, std::error_code& ec, deadline d = {});

  // connect() fixes the peer: send()/receive() use it, and datagrams from
  // other addresses are dropped. Does not block. Throws std::system_error.
  void connect(const address& to);
  void connect(const address& to, std::error_code& ec);
  std::size_t send(const void* buf, std::size_t n, deadline d = {});
  std::size_t send(const void* buf, std::size_t n, std::error_code& ec, deadline d = {});
  std::size_t receive(void* buf, std::size_t n, deadline d = {});
  std::size_t receive(void* buf, std::size_t n, std::error_code& ec, deadline d = {});

  // set_broadcast() sets SO_BROADCAST (needed to send to a broadcast address).
  void set_broadcast(bool on);
  // peer() is the connected address (empty if not connected).
  const address& peer() const noexcept { return peer_; }

 private:
  address peer_;
  address local_;  // from bind(), for error messages
};

}  // namespace green::net
