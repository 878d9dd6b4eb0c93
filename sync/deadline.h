// deadline_after(seconds): the deadline of a timed wait given in seconds, as every timed
// operation in sync/ takes it (internal to sync/). Negative or NaN timeouts throw
// std::invalid_argument naming the caller; absurdly long ones (beyond ~30 years) mean "never".
#ifndef WEFT_SYNC_DEADLINE_H_
#define WEFT_SYNC_DEADLINE_H_

#include "weft/sched/park.h"

namespace weft::internal {

Clock::time_point deadline_after(double seconds, const char* what);

}  // namespace weft::internal

#endif  // WEFT_SYNC_DEADLINE_H_
