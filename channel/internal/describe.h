// How a channel prints (Julia's show of a Channel): its item type, size and state, as in
// "Channel<char>(1) (2 items available)". Internal to channel.h's to_string and operator<<.
#ifndef WEFT_CHANNEL_INTERNAL_DESCRIBE_H_
#define WEFT_CHANNEL_INTERNAL_DESCRIBE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <typeinfo>

namespace weft::internal {

// "Channel<T>(capacity)" then " (closed)", " (empty)", " (1 item available)" or " (N items
// available)", T named by its demangled type name (std::string for std::string).
std::string describe_channel(const std::type_info& item, std::int64_t capacity, bool open,
                             std::size_t available);

}  // namespace weft::internal

#endif  // WEFT_CHANNEL_INTERNAL_DESCRIBE_H_
