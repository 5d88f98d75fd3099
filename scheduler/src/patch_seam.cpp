// The patch library's seam (green/sched/patch_seam.hpp). Its own object
// file, kept in a consumer's executable by greenfiber::patch's link options
// (--undefined), like the fd seam: the patch reaches it through a weak
// reference, which alone would not pull it out of the static library.
#include "green/sched/patch_seam.hpp"

#include "green/sched/scheduler.hpp"

namespace green::sched {

void rearm_kill() noexcept {
  // kill() on ourselves: the parker is idle (we are running), so it only
  // sets the flag that the next park() turns into wake_reason::killed.
  if (fiber_base* f = current_fiber()) f->kill();
}

}  // namespace green::sched
