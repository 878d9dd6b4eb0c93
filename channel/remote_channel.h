// RemoteChannel<T>: Julia's Distributed.RemoteChannel within one process -- a reference to a
// channel, with the operations Julia defines on the reference.
//
//   RemoteChannel<T> r;          a reference to a new Channel<T>(1) (Julia's RemoteChannel()
//                                makes a Channel{Any}(1): RemoteChannel<> has T = std::any)
//   RemoteChannel r(f);          a reference to the channel f() returns (Julia's
//                                RemoteChannel(f)), e.g. [] { return Channel<int>(10); };
//                                T is deduced from it
//   put(r, v)                    put(c, v) on the channel; returns r, as put! does
//   take(r), fetch(r), isready(r), close(r), isopen(r)   the same on the channel
//   wait(r)                      blocks until a value is available on the channel; returns r
//
// weft is one process, so there is no pid argument: Julia runs f on process pid and keeps the
// channel there, weft runs f at once in the caller and keeps the channel here. Everything else
// -- blocking, errors, closing -- is the channel's (weft/channel/channel.h), since every
// operation is that channel's own.
// A RemoteChannel is a handle: copies refer to the same channel, which lives while a handle
// (or anything else holding the channel) does.
// Thread safety and blocking: the channel's; every operation from any task or plain thread.
#ifndef WEFT_CHANNEL_REMOTE_CHANNEL_H_
#define WEFT_CHANNEL_REMOTE_CHANNEL_H_

#include <any>
#include <concepts>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "weft/channel/channel.h"

namespace weft {

template <typename T = std::any>
class RemoteChannel {
 public:
  using value_type = T;

  RemoteChannel() : channel_(1) {}
  template <typename F>
    requires std::invocable<F&> && std::same_as<std::invoke_result_t<F&>, Channel<T>>
  explicit RemoteChannel(F make) : channel_(std::invoke(make)) {}

  RemoteChannel(const RemoteChannel&) = default;
  RemoteChannel& operator=(const RemoteChannel&) = default;

  template <typename U = T>
  const RemoteChannel& put(U&& item) const {
    channel_.put(std::forward<U>(item));
    return *this;
  }
  T take() const { return channel_.take(); }
  T fetch() const { return channel_.fetch(); }
  bool isready() const { return channel_.isready(); }
  const RemoteChannel& wait() const {
    channel_.wait();
    return *this;
  }
  void close() const { channel_.close(); }
  bool isopen() const { return channel_.isopen(); }

  // The channel this refers to.
  const Channel<T>& channel() const { return channel_; }

  friend bool operator==(const RemoteChannel& a, const RemoteChannel& b) {
    return a.channel_ == b.channel_;
  }

 private:
  Channel<T> channel_;
};

template <typename F>
  requires std::invocable<F&>
RemoteChannel(F) -> RemoteChannel<typename std::invoke_result_t<F&>::value_type>;

template <typename T, typename U>
const RemoteChannel<T>& put(const RemoteChannel<T>& r, U&& item) {
  return r.put(std::forward<U>(item));
}
template <typename T>
T take(const RemoteChannel<T>& r) {
  return r.take();
}
template <typename T>
T fetch(const RemoteChannel<T>& r) {
  return r.fetch();
}
template <typename T>
bool isready(const RemoteChannel<T>& r) {
  return r.isready();
}
template <typename T>
const RemoteChannel<T>& wait(const RemoteChannel<T>& r) {
  return r.wait();
}
template <typename T>
void close(const RemoteChannel<T>& r) {
  r.close();
}
template <typename T>
bool isopen(const RemoteChannel<T>& r) {
  return r.isopen();
}

}  // namespace weft

#endif  // WEFT_CHANNEL_REMOTE_CHANNEL_H_
