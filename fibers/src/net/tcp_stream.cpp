// green::net::tcp_stream: connect, reads, writes, options. The waiting and
// closing protocol is socket.cpp's.
#include "green/net/tcp_stream.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include "green/net/resolve.hpp"

namespace green::net {

tcp_stream tcp_stream::connect(const address& to, std::error_code& ec, deadline d) {
  ec.clear();
  tcp_stream s;
  if (to.empty()) {
    ec = std::make_error_code(std::errc::address_family_not_supported);
    return s;
  }
  s.open(to.family(), SOCK_STREAM, ec);
  if (ec) return s;
  s.peer_ = to;
  bool ok;
  {
    use u(s);
    ok = ::connect(s.fd_, to.data(), to.size()) == 0;
    if (!ok && errno != EINPROGRESS && errno != EINTR) ec.assign(errno, std::system_category());
    // With an edge-triggered registration a wake may be spurious, so a wake
    // is confirmed: SO_ERROR set -> failed; getpeername() ENOTCONN -> not yet.
    while (!ok && !ec && s.wait(sched::io_dir::write, d, ec)) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(s.fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      sockaddr_storage ss{};
      socklen_t sl = sizeof ss;
      if (err == 0 && ::getpeername(s.fd_, reinterpret_cast<sockaddr*>(&ss), &sl) == 0) ok = true;
      else if (err == 0 && errno != ENOTCONN) err = errno;
      if (err != 0) ec.assign(err, std::system_category());
    }
  }
  if (!ok) s.close();  // ~s would too; closing here keeps the fd's life obvious
  return s;
}

tcp_stream tcp_stream::connect(const address& to, deadline d) {
  return or_throw("connect", to, [&](std::error_code& ec) { return connect(to, ec, d); });
}

tcp_stream tcp_stream::connect(std::string_view host, std::string_view service, deadline d) {
  std::vector<address> addrs = resolve(host, service, d);
  std::error_code ec;
  for (const address& a : addrs) {
    tcp_stream s = connect(a, ec, d);
    if (!ec) return s;
    if (ec == std::errc::timed_out) throw_error(ec, "connect", a);
  }
  throw_error(ec, "connect", addrs.back());  // resolve() never returns an empty list
}

std::size_t tcp_stream::read_some(void* buf, std::size_t n, std::error_code& ec, deadline d) {
  return stream_receive_(buf, n, d, ec);
}

std::size_t tcp_stream::read_some(void* buf, std::size_t n, deadline d) {
  return or_throw("read_some", peer_, [&](std::error_code& ec) { return read_some(buf, n, ec, d); });
}

std::size_t tcp_stream::read_exact(void* buf, std::size_t n, std::error_code& ec, deadline d) {
  return read_fully(buf, n, ec,
                    [&](void* p, std::size_t k, std::error_code& e) { return stream_receive_(p, k, d, e); });
}

void tcp_stream::read_exact(void* buf, std::size_t n, deadline d) {
  std::error_code ec;
  read_exact(buf, n, ec, d);
  check(ec, "read_exact", peer_);
}

std::size_t tcp_stream::write_some(const void* buf, std::size_t n, std::error_code& ec, deadline d) {
  return send_(buf, n, nullptr, d, ec);
}

std::size_t tcp_stream::write_some(const void* buf, std::size_t n, deadline d) {
  return or_throw("write_some", peer_, [&](std::error_code& ec) { return write_some(buf, n, ec, d); });
}

std::size_t tcp_stream::write_all(const void* buf, std::size_t n, std::error_code& ec, deadline d) {
  std::size_t put = 0;
  ec.clear();
  while (put < n) {
    std::size_t r = send_(static_cast<const char*>(buf) + put, n - put, nullptr, d, ec);
    if (ec) break;
    put += r;
  }
  return put;
}

void tcp_stream::write_all(const void* buf, std::size_t n, deadline d) {
  std::error_code ec;
  write_all(buf, n, ec, d);
  check(ec, "write_all", peer_);
}

void tcp_stream::shutdown(shutdown_how how) {
  use u(*this);
  std::error_code ec;
  if (!u.ok()) bad_fd(ec);
  else if (::shutdown(fd_, static_cast<int>(how)) != 0) ec.assign(errno, std::system_category());
  check(ec, "shutdown", peer_);
}

void tcp_stream::set_nodelay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on, "setsockopt TCP_NODELAY"); }
bool tcp_stream::nodelay() const { return get_option(IPPROTO_TCP, TCP_NODELAY, "getsockopt TCP_NODELAY") != 0; }

void tcp_stream::set_keepalive(bool on) { set_option(SOL_SOCKET, SO_KEEPALIVE, on, "setsockopt SO_KEEPALIVE"); }
void tcp_stream::set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int count) {
  set_keepalive(true);
  set_option(IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle.count()), "setsockopt TCP_KEEPIDLE");
  set_option(IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(interval.count()), "setsockopt TCP_KEEPINTVL");
  set_option(IPPROTO_TCP, TCP_KEEPCNT, count, "setsockopt TCP_KEEPCNT");
}
bool tcp_stream::keepalive() const { return get_option(SOL_SOCKET, SO_KEEPALIVE, "getsockopt SO_KEEPALIVE") != 0; }

void tcp_stream::set_linger(std::optional<std::chrono::seconds> t) {
  use u(*this);
  std::error_code ec;
  ::linger l{t.has_value() ? 1 : 0, t ? static_cast<int>(t->count()) : 0};
  if (!u.ok()) bad_fd(ec);
  else if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) ec.assign(errno, std::system_category());
  check(ec, "setsockopt SO_LINGER", peer_);
}

}  // namespace green::net
