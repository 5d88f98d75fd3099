// Out-of-line parts of channel<T> and the queues: names and errors. The
// design of both is in green/detail/pipe.hpp (they are templates).
#include "green/channel.hpp"
#include "green/queue.hpp"

namespace green {

const char* to_string(op_status s) noexcept {
  switch (s) {
    case op_status::success:
      return "success";
    case op_status::empty:
      return "empty";
    case op_status::full:
      return "full";
    case op_status::timeout:
      return "timeout";
    case op_status::closed:
      return "closed";
  }
  return "?";
}

namespace detail {

const pipe_names channel_names{"green::channel", "channel send", "channel recv", "send on a closed green::channel"};
const pipe_names queue_names{"green::queue", "queue put", "queue get", "put on a closed green::queue"};

void throw_closed(const char* what) { throw closed_error(what); }

}  // namespace detail
}  // namespace green
