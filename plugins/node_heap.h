// NodeHeap: an intrusive min-heap of SchedNodes (a pairing heap), for policies that order tasks
// by a key of their own, such as a deadline.
//
// Intrusive like weft's NodeQueue: it links nodes through SchedNode::prev (first child) and
// SchedNode::next (next sibling), the fields a policy owns while a node is queued, so pushing
// allocates nothing and cannot fail, which matters because push() may run on any thread,
// including timer threads. push is O(1); pop is O(log n) amortized.
//
// `Before(a, b)` says whether a comes out before b. It must be a strict total order on the
// queued nodes (break ties with an arrival number) and must not change while a node is queued.
// Not synchronized: guard it with a lock (weft::SpinLock) when several threads use it.
#ifndef WEFT_PLUGINS_NODE_HEAP_H_
#define WEFT_PLUGINS_NODE_HEAP_H_

#include <cstddef>

#include "weft/task/sched_node.h"

namespace weft::plugins {

template <typename Before>
class NodeHeap {
 public:
  bool empty() const { return root_ == nullptr; }
  std::size_t size() const { return size_; }
  SchedNode* top() const { return root_; }

  void push(SchedNode* n) {
    n->prev = nullptr;
    n->next = nullptr;
    root_ = meld(root_, n);
    ++size_;
  }

  SchedNode* pop() {
    SchedNode* top = root_;
    if (top == nullptr) return nullptr;
    root_ = merge_children(top->prev);
    top->prev = nullptr;
    --size_;
    return top;
  }

 private:
  static SchedNode*& child(SchedNode* n) { return n->prev; }
  static SchedNode*& sibling(SchedNode* n) { return n->next; }

  // Two roots (sibling == nullptr) into one: the later one becomes the first child of the other.
  static SchedNode* meld(SchedNode* a, SchedNode* b) {
    if (a == nullptr) return b;
    if (b == nullptr) return a;
    if (Before{}(b, a)) {
      SchedNode* t = a;
      a = b;
      b = t;
    }
    sibling(b) = child(a);
    child(a) = b;
    return a;
  }

  // The standard two passes, without recursion: meld siblings pairwise left to right (chaining
  // the results in reverse through `sibling`), then meld that chain into one root.
  static SchedNode* merge_children(SchedNode* first) {
    SchedNode* pairs = nullptr;
    while (first != nullptr) {
      SchedNode* a = first;
      SchedNode* b = sibling(a);
      first = b == nullptr ? nullptr : sibling(b);
      sibling(a) = nullptr;
      if (b != nullptr) sibling(b) = nullptr;
      SchedNode* m = meld(a, b);
      sibling(m) = pairs;
      pairs = m;
    }
    SchedNode* root = nullptr;
    while (pairs != nullptr) {
      SchedNode* rest = sibling(pairs);
      sibling(pairs) = nullptr;
      root = meld(root, pairs);
      pairs = rest;
    }
    return root;
  }

  SchedNode* root_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace weft::plugins

#endif  // WEFT_PLUGINS_NODE_HEAP_H_
