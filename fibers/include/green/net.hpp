// green::net — sockets for fibers: everything in one include.
#pragma once

#include "green/net/address.hpp"
#include "green/net/buffered_stream.hpp"
#include "green/net/resolve.hpp"
#include "green/net/socket.hpp"
#include "green/net/tcp_listener.hpp"
#include "green/net/tcp_stream.hpp"
#include "green/net/udp_socket.hpp"
