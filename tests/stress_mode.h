// WEFT_STRESS, the stress tests' opt-in long mode (README). Set to anything but "" or "0", the
// tests that read it run many more rounds or tasks; unset, they run the short default that the
// test command and CI run.
#ifndef WEFT_TESTS_STRESS_MODE_H_
#define WEFT_TESTS_STRESS_MODE_H_

#include <cstdlib>
#include <string_view>

namespace weft::testing {

inline bool stress_mode() {
  const char* v = std::getenv("WEFT_STRESS");
  return v != nullptr && std::string_view(v) != "" && std::string_view(v) != "0";
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_STRESS_MODE_H_
