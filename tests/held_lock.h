// A lock left held by a task that ended: Julia's stays held for good, and no later task may pass
// for its holder, though the allocator gives the later tasks the holder's memory. For any lock
// with lock/trylock/unlock free functions and islocked (ReentrantLock, a Channel's lock(c)).
#ifndef WEFT_TESTS_HELD_LOCK_H_
#define WEFT_TESTS_HELD_LOCK_H_

#include "gtest/gtest.h"
#include "weft/sched/scheduling.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft::testing {

// Takes `l` (take), or reports whether `l` refused the caller both trylock and unlock.
template <typename Lock>
bool take_or_find_refused(Lock& l, bool take) {
  if (take) {
    lock(l);
    return true;
  }
  bool refused = !trylock(l);
  try {
    unlock(l);
    refused = false;
  } catch (const TaskStateError&) {
  }
  return refused;
}

// From a task: a task takes `l` and ends; 64 later tasks, each given a core of the holder's size
// (one lambda type for all), must all be refused.
template <typename Lock>
void expect_held_for_every_later_task(Lock& l) {
  auto task = [&l](bool take) {
    return spawn([&l, take] { return take_or_find_refused(l, take); });
  };
  {
    Task<bool> holder = task(true);
    EXPECT_TRUE(fetch(holder));
  }  // its core is freed here
  for (int i = 0; i < 64; ++i) {
    Task<bool> later = task(false);
    ASSERT_TRUE(fetch(later)) << "task " << i << " after the holder could take or release it";
  }
  EXPECT_TRUE(islocked(l));
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_HELD_LOCK_H_
