// call_then(f, release): the shared body of Julia's do-block forms lock(f, l) and acquire(f, s)
// (internal to sync/). Runs f(), then release(), also when f throws, and returns f's result
// (values, references and void alike). release() runs once in either case.
#ifndef WEFT_SYNC_SCOPED_CALL_H_
#define WEFT_SYNC_SCOPED_CALL_H_

#include <type_traits>
#include <utility>

namespace weft::internal {

template <typename F, typename Release>
decltype(auto) call_then(F&& f, Release&& release) {
  using Result = std::invoke_result_t<F>;
  if constexpr (std::is_void_v<Result>) {
    try {
      std::forward<F>(f)();
    } catch (...) {
      release();
      throw;
    }
    release();
  } else {
    Result r = [&]() -> Result {
      try {
        return std::forward<F>(f)();
      } catch (...) {
        release();
        throw;
      }
    }();
    release();
    if constexpr (std::is_reference_v<Result>) {
      return static_cast<Result>(r);
    } else {
      return r;
    }
  }
}

}  // namespace weft::internal

#endif  // WEFT_SYNC_SCOPED_CALL_H_
