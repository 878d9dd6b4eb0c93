// RingBuffer<T>: a FIFO of T in a power-of-two array that grows by doubling, so that a channel
// created with a large (or unbounded) size costs memory only for what it actually holds.
// Not synchronized (the channel's lock guards it). push_back may throw std::bad_alloc, before
// anything changed; every other operation is noexcept, which requires T's move constructor to
// be noexcept (Channel checks this at compile time).
#ifndef WEFT_CHANNEL_INTERNAL_RING_BUFFER_H_
#define WEFT_CHANNEL_INTERNAL_RING_BUFFER_H_

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace weft::internal {

template <typename T>
class RingBuffer {
 public:
  // The first allocation holds `initial_slots` items (rounded up to a power of two).
  explicit RingBuffer(std::size_t initial_slots) : initial_slots_(round_up(initial_slots)) {}
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;
  ~RingBuffer() {
    while (size_ != 0) pop_front();
    if (slots_ != nullptr) std::allocator<T>().deallocate(slots_, mask_ + 1);
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

  T& front() { return slots_[head_]; }

  void pop_front() {
    slots_[head_].~T();
    head_ = (head_ + 1) & mask_;
    --size_;
  }

  // Whether push_back has room without growing (and so cannot throw).
  bool has_room() const { return slots_ != nullptr && size_ != mask_ + 1; }

  void push_back(T&& value) {
    if (!has_room()) grow();
    push_back_into_room(std::move(value));
  }

  // push_back when has_room().
  void push_back_into_room(T&& value) noexcept {
    ::new (static_cast<void*>(&slots_[(head_ + size_) & mask_])) T(std::move(value));
    ++size_;
  }

 private:
  static std::size_t round_up(std::size_t n) {
    std::size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }

  void grow() {
    const std::size_t old_slots = slots_ == nullptr ? 0 : mask_ + 1;
    const std::size_t new_slots = old_slots == 0 ? initial_slots_ : old_slots * 2;
    T* fresh = std::allocator<T>().allocate(new_slots);  // the only step that may throw
    for (std::size_t i = 0; i < size_; ++i) {
      T& item = slots_[(head_ + i) & mask_];
      ::new (static_cast<void*>(&fresh[i])) T(std::move(item));
      item.~T();
    }
    if (slots_ != nullptr) std::allocator<T>().deallocate(slots_, old_slots);
    slots_ = fresh;
    mask_ = new_slots - 1;
    head_ = 0;
  }

  T* slots_ = nullptr;
  std::size_t mask_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  const std::size_t initial_slots_;
};

}  // namespace weft::internal

#endif  // WEFT_CHANNEL_INTERNAL_RING_BUFFER_H_
