// green::net::tcp_listener — a listening TCP socket whose accept() parks
// the fiber.
#pragma once

#include <optional>
#include <system_error>

#include "green/net/socket.hpp"
#include "green/net/tcp_stream.hpp"

namespace green::net {

// listen_options configure bind(). The defaults suit a server that may be
// restarted at once on the same port.
struct listen_options {
  int backlog = SOMAXCONN;      // listen() queue length (the kernel caps it at net.core.somaxconn)
  bool reuse_address = true;    // SO_REUSEADDR: rebind while old connections sit in TIME_WAIT
  bool reuse_port = false;      // SO_REUSEPORT: several listeners share the port, the kernel spreads connections
  std::optional<bool> v6_only;  // IPV6_V6ONLY for an IPv6 address; nullopt: the system default
};

// tcp_listener accepts TCP connections. Move-only; the destructor closes it
// (a fiber blocked in accept() then wakes with operation_canceled).
class tcp_listener : public socket {
 public:
  tcp_listener() noexcept = default;

  // bind() opens, configures, binds and listens. Port 0 picks a free port
  // (see local_address()). Throws std::system_error naming "bind" (or
  // "listen") and the address: address_in_use, permission_denied...
  static tcp_listener bind(const address& at, listen_options opts = {});
  static tcp_listener bind(const address& at, std::error_code& ec, listen_options opts = {});

  // accept() waits for a connection and returns it (non-blocking,
  // close-on-exec, peer_address() set). Outcomes besides socket.hpp's:
  // EMFILE / ENFILE (is_fd_exhaustion(ec)) when the process or system is out
  // of fds — the connection stays queued and the listener stays usable, so
  // an accept loop should pause briefly and retry rather than stop; a
  // connection reset before it was accepted is skipped silently.
  tcp_stream accept(deadline d = {});
  tcp_stream accept(std::error_code& ec, deadline d = {});

  // address() is the bound address (kept from bind(), port resolved).
  const net::address& address() const noexcept { return local_; }

 private:
  net::address local_;
};

}  // namespace green::net
