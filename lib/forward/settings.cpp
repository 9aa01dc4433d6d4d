#include "forward/settings.hpp"

namespace cwhook::forward {

retry_schedule default_retry_schedule()
{
    using namespace std::chrono_literals;
    // About a day in all (27 h 35 min): a receiver that is down overnight still gets every event.
    return {0ms, 5s, 5min, 30min, 2h, 5h, 10h, 10h};
}

} // namespace cwhook::forward
