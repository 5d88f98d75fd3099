// green::sched — the two things the patch library (fibers/patch,
// docs/patch.md) needs from the runtime beyond park/wake and the fd seam.
// Kept out of scheduler.hpp: nothing else should call them.
#pragma once

namespace green::sched {

// rearm_kill() asks the calling fiber to exit again, so that its next green
// suspension point raises green::fiber_exit. For a caller that received a
// kill (a park returned wake_reason::killed, which delivers it once) but
// could only report it to C code as ECANCELED. No-op on a plain thread.
// Fiber context only.
void rearm_kill() noexcept;

}  // namespace green::sched
