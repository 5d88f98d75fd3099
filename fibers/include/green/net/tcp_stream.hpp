// green::net::tcp_stream — a connected TCP socket whose calls park the
// fiber instead of blocking the worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <system_error>

#include "green/net/socket.hpp"

namespace green::net {

// How shutdown() ends a direction.
enum class shutdown_how { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

// tcp_stream is a connected TCP socket. Move-only; the destructor closes it.
// Every blocking call takes a per-call deadline (see net::deadline) and
// reports the outcomes listed in socket.hpp; each also has an error_code
// form that does not throw (except for kill and green::timeout scopes).
//
// Documented outcomes of reads and writes, besides socket.hpp's:
//   the peer closed its side         read_some() returns 0;
//                                    read_exact() raises net::error::eof
//   the peer reset the connection    std::errc::connection_reset (a write
//                                    after that: std::errc::broken_pipe)
// Writes never raise SIGPIPE (MSG_NOSIGNAL).
class tcp_stream : public socket {
 public:
  tcp_stream() noexcept = default;

  // connect() opens a socket of the address's family and connects it.
  // Throws std::system_error naming "connect" and the address:
  // connection_refused, timed_out (the deadline), network_unreachable...
  static tcp_stream connect(const address& to, deadline d = {});
  static tcp_stream connect(const address& to, std::error_code& ec, deadline d = {});
  // connect() to a host name or numeric host and a service name or port:
  // resolve(), then each address in turn until one connects; the deadline
  // covers them all. Throws the last address's error (or resolve's).
  static tcp_stream connect(std::string_view host, std::string_view service, deadline d = {});

  // read_some() reads at least 1 and at most n bytes, waiting until some
  // arrive; returns 0 at end of stream. For n == 0 it returns 0 at once,
  // reading nothing (a closed stream still reports bad_file_descriptor).
  std::size_t read_some(void* buf, std::size_t n, deadline d = {});
  std::size_t read_some(void* buf, std::size_t n, std::error_code& ec, deadline d = {});
  // read_exact() reads exactly n bytes. At end of stream first it raises
  // std::system_error(net::error::eof); the error_code form returns how many
  // bytes it did read, with ec set.
  void read_exact(void* buf, std::size_t n, deadline d = {});
  std::size_t read_exact(void* buf, std::size_t n, std::error_code& ec, deadline d = {});
  // write_some() writes at least 1 and at most n bytes, waiting for room.
  std::size_t write_some(const void* buf, std::size_t n, deadline d = {});
  std::size_t write_some(const void* buf, std::size_t n, std::error_code& ec, deadline d = {});
  // write_all() writes all n bytes; the error_code form returns how many it
  // wrote before failing.
  void write_all(const void* buf, std::size_t n, deadline d = {});
  std::size_t write_all(const void* buf, std::size_t n, std::error_code& ec, deadline d = {});
  void write_all(std::string_view s, deadline d = {}) { write_all(s.data(), s.size(), d); }

  // shutdown() ends one or both directions (the peer reads end of stream
  // after shutdown(write)). Throws std::system_error (not_connected...).
  void shutdown(shutdown_how how = shutdown_how::write);

  // peer_address() is the address connected to (kept from connect/accept,
  // so it is known even after a reset).
  const address& peer_address() const noexcept { return peer_; }

  // Options. Each throws std::system_error naming the option.
  void set_nodelay(bool on);  // TCP_NODELAY: no Nagle delay for small writes
  bool nodelay() const;
  // set_keepalive() turns SO_KEEPALIVE on or off; with idle/interval/count
  // it also sets TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT.
  void set_keepalive(bool on);
  void set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int count);
  bool keepalive() const;
  // set_linger(0s) makes close() reset the connection (RST) instead of a
  // graceful FIN; nullopt restores the default.
  void set_linger(std::optional<std::chrono::seconds> t);

 private:
  friend class tcp_listener;
  address peer_;
};

}  // namespace green::net
