// green::net::tcp_listener: bind, listen, accept. Waiting and closing:
// socket.cpp's protocol.
#include "green/net/tcp_listener.hpp"

#include <sys/socket.h>

namespace green::net {

tcp_listener tcp_listener::bind(const net::address& at, std::error_code& ec, listen_options opts) {
  tcp_listener l;
  l.open_bound(at, SOCK_STREAM, {opts.reuse_address, opts.reuse_port, opts.v6_only}, ec);
  if (ec) return l;
  if (::listen(l.fd_, opts.backlog) != 0) {
    ec.assign(errno, std::system_category());
    l.close();
    return l;
  }
  l.local_ = l.local_address();
  return l;
}

tcp_listener tcp_listener::bind(const net::address& at, listen_options opts) {
  return or_throw("bind/listen", at, [&](std::error_code& ec) { return bind(at, ec, opts); });
}

tcp_stream tcp_listener::accept(std::error_code& ec, deadline d) {
  ec.clear();
  tcp_stream s;
  use u(*this);
  if (!u.ok()) {
    bad_fd(ec);
    return s;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  long fd = io(sched::io_dir::read, d, ec, [&]() -> long {
    for (;;) {
      len = sizeof ss;
      int r = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      // A connection reset while queued: skip it, as Go and nginx do.
      if (r < 0 && errno == ECONNABORTED) continue;
      return r;
    }
  });
  if (fd < 0) return s;
  s.adopt(static_cast<int>(fd));
  s.peer_ = net::address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return s;
}

tcp_stream tcp_listener::accept(deadline d) {
  return or_throw("accept", local_, [&](std::error_code& ec) { return accept(ec, d); });
}

}  // namespace green::net
