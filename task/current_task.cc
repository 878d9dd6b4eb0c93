#include "weft/task/current_task.h"

namespace weft::internal {
namespace {
thread_local TaskCore* tls_current_task = nullptr;
}  // namespace

__attribute__((noinline, noipa)) TaskCore* current_task_core() { return tls_current_task; }

__attribute__((noinline, noipa)) void set_current_task_core(TaskCore* core) {
  tls_current_task = core;
}

}  // namespace weft::internal
