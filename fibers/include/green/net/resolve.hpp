// green::net::resolve — host and service names to addresses.
#pragma once

#include <string_view>
#include <system_error>
#include <vector>

#include "green/net/socket.hpp"

namespace green::net {

// resolve() turns a host ("example.com", "localhost", "::1", "" for the
// loopback) and a service ("http", "8080", "" for port 0) into addresses, in
// the order getaddrinfo() prefers (RFC 6724), without duplicates. family:
// AF_UNSPEC (both), AF_INET or AF_INET6.
// A numeric host with a numeric service is parsed on the spot; a numeric
// host with a service name goes to getaddrinfo(AI_NUMERICHOST) inline (no
// DNS); anything else runs getaddrinfo() on the OS-thread pool
// (threadpool::default_pool()), as gevent's default resolver does, while
// the fiber parks. A deadline, a green::timeout scope or a kill end the
// wait; the lookup itself runs on to its end on its thread.
// Throws std::system_error naming "resolve" and host:service, with a code
// of resolve_category() (EAI_NONAME: "Name or service not known"...), or
// timed_out. Never returns an empty list.
std::vector<address> resolve(std::string_view host, std::string_view service = {}, deadline d = {},
                             int family = AF_UNSPEC);
std::vector<address> resolve(std::string_view host, std::string_view service, std::error_code& ec, deadline d = {},
                             int family = AF_UNSPEC);

// resolve_category() is the category of getaddrinfo()'s EAI_* codes
// (EAI_SYSTEM is reported as the errno instead).
const std::error_category& resolve_category() noexcept;

}  // namespace green::net
