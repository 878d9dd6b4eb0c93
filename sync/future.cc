// Future<T>'s error, out of line: the template stays small in every translation unit.
#include "weft/sync/future.h"

namespace weft::internal {

void throw_future_already_set() {
  throw std::logic_error("put: Future can be set only once (it already holds a value)");
}

}  // namespace weft::internal
