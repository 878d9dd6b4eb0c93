// InvalidStateException: Julia's exception for an operation that an object's state forbids.
//
// A closed Channel raises it from put, take (once drained), fetch and wait, with what()
// "Channel is closed." and state() "closed", unless the channel was closed with an exception
// of the user's (close(c, e)), which is then raised instead. Iterating over a channel ends
// quietly on this exception (state "closed") and rethrows any other.
// Thread safety: immutable once constructed; one object may be rethrown in several threads.
#ifndef WEFT_CHANNEL_INVALID_STATE_EXCEPTION_H_
#define WEFT_CHANNEL_INVALID_STATE_EXCEPTION_H_

#include <exception>
#include <string>

namespace weft {

class InvalidStateException : public std::exception {
 public:
  InvalidStateException(std::string message, std::string state);

  const char* what() const noexcept override { return message_.c_str(); }
  // The state that forbade the operation, as Julia's Symbol field: "closed" for a channel.
  const std::string& state() const noexcept { return state_; }

 private:
  std::string message_;
  std::string state_;
};

}  // namespace weft

#endif  // WEFT_CHANNEL_INVALID_STATE_EXCEPTION_H_
