#include "weft/sync/sync_scope.h"

#include <algorithm>
#include <any>
#include <cstdio>

#include "weft/task/errors.h"

namespace weft {

SyncScope::~SyncScope() {
  try {
    finish(nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft: a SyncScope destroyed without wait(): %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "weft: a SyncScope destroyed without wait(): a task failed\n");
  }
}

void SyncScope::bind_current(SyncScope* scope) {
  task_local_storage().set(std::string(kKey), std::any(scope));
}

SyncScope* SyncScope::current() {
  std::any* bound = task_local_storage().find(kKey);
  if (bound == nullptr) return nullptr;
  SyncScope** scope = std::any_cast<SyncScope*>(bound);
  return scope == nullptr ? nullptr : *scope;
}

void SyncScope::add(const TaskRef& t) {
  t.checked_core("SyncScope::add");
  lock_.lock();
  try {
    tasks_.push_back(t);  // may throw std::bad_alloc: not with the lock held
  } catch (...) {
    lock_.unlock();
    throw;
  }
  if (tasks_.size() >= compact_at_) compact();  // erases only: never throws
  lock_.unlock();
}

// Drops the tasks that have ended and succeeded, so that a long-lived scope that starts
// millions of short tasks holds only the live (and the failed) ones. Amortized O(1) per add.
// Ended, not merely done: a done task may still be running its on_done callbacks (a bound
// channel's close), whose effects the scope's end promises, as wait(t) does.
void SyncScope::compact() {
  tasks_.erase(tasks_.begin(), tasks_.begin() + static_cast<std::ptrdiff_t>(next_));
  next_ = 0;
  tasks_.erase(std::remove_if(tasks_.begin(), tasks_.end(),
                              [](const TaskRef& t) {
                                return t.core()->ended() && t.core()->exception == nullptr;
                              }),
               tasks_.end());
  compact_at_ = std::max<std::size_t>(256, 2 * tasks_.size());
}

void SyncScope::finish(std::exception_ptr body_error) {
  std::vector<std::exception_ptr> errors;
  if (body_error != nullptr) errors.push_back(body_error);
  for (;;) {
    TaskRef t;
    lock_.lock();
    if (next_ == tasks_.size()) {
      // Everything registered is done, and only registered tasks (or the body, now finished)
      // can register more: the scope is complete.
      tasks_.clear();
      next_ = 0;
      lock_.unlock();
      break;
    }
    t = tasks_[next_++];
    lock_.unlock();
    try {
      weft::wait(t);
    } catch (...) {
      errors.push_back(std::current_exception());
    }
  }
  if (errors.empty()) return;
  if (errors.size() == 1 && body_error != nullptr) std::rethrow_exception(body_error);
  throw CompositeException(std::move(errors));
}

}  // namespace weft
