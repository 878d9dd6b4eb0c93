#include "weft/channel/invalid_state_exception.h"

#include <utility>

namespace weft {

InvalidStateException::InvalidStateException(std::string message, std::string state)
    : message_(std::move(message)), state_(std::move(state)) {}

}  // namespace weft
