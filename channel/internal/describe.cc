#include "weft/channel/internal/describe.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace weft::internal {
namespace {

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  std::string name = status == 0 && demangled != nullptr ? demangled.get() : type.name();
  // What everyone writes, not what libstdc++ calls it.
  return absl::StrReplaceAll(
      name, {{"std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
              "std::string"}});
}

}  // namespace

std::string describe_channel(const std::type_info& item, std::int64_t capacity, bool open,
                             std::size_t available) {
  std::string text = absl::StrCat("Channel<", type_name(item), ">(", capacity, ")");
  if (!open) return absl::StrCat(text, " (closed)");
  if (available == 0) return absl::StrCat(text, " (empty)");
  return absl::StrCat(text, " (", available, available == 1 ? " item" : " items", " available)");
}

}  // namespace weft::internal
