// Futex waits and wakes on a 32-bit atomic: how plain threads and idle workers block.
// Private futexes (this process only). Thread-safe; futex_wait may return spuriously.
#ifndef WEFT_SCHED_FUTEX_H_
#define WEFT_SCHED_FUTEX_H_

#include <atomic>
#include <cstdint>

#include "weft/sched/park.h"

namespace weft::internal {

// Blocks while *word == expected, until a futex_wake, an absolute `deadline` or a relative
// `timeout` (either may be null). Returns false only when it timed out.
bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                const Clock::time_point* deadline = nullptr,
                const Clock::duration* timeout = nullptr);

// Wakes one thread blocked on `word`.
void futex_wake(std::atomic<std::uint32_t>* word);

}  // namespace weft::internal

#endif  // WEFT_SCHED_FUTEX_H_
