// A first-in-first-out queue that costs nothing while empty.  std::deque allocates a 512-byte
// block and its map at construction, so every idle session paid ~1.1 KiB for two queues that
// are empty between commands (issue 10: RSS per idle session).  This one is a vector and a head
// index: push at the back, pop at the front, iterate oldest first.  Popped slots are compacted
// once they are half the vector (amortised O(1)); an emptied queue keeps a small capacity (the
// next command reuses it) and gives a larger one back.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace subproxy {

template <typename T>
class Fifo {
public:
    bool empty() const { return head_ == items_.size(); }
    std::size_t size() const { return items_.size() - head_; }
    T& front() { return items_[head_]; }
    const T& front() const { return items_[head_]; }
    T& back() { return items_.back(); }
    const T& back() const { return items_.back(); }
    void push_back(T item) { items_.push_back(std::move(item)); }
    template <typename... Args>
    T& emplace_back(Args&&... args) {
        return items_.emplace_back(std::forward<Args>(args)...);
    }
    void pop_front() {
        items_[head_] = T();  // its strings go now, not at the next compaction
        if (++head_ == items_.size()) {
            clear();
        } else if (head_ >= kCompactAt && head_ * 2 >= items_.size()) {
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }
    void clear() {
        items_.clear();
        head_ = 0;
        if (items_.capacity() > kKeepCapacity) {
            std::vector<T>().swap(items_);
        }
    }
    typename std::vector<T>::iterator begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    typename std::vector<T>::iterator end() { return items_.end(); }
    typename std::vector<T>::const_iterator begin() const {
        return items_.begin() + static_cast<std::ptrdiff_t>(head_);
    }
    typename std::vector<T>::const_iterator end() const { return items_.end(); }

private:
    static constexpr std::size_t kCompactAt = 16;
    static constexpr std::size_t kKeepCapacity = 4;
    std::vector<T> items_;
    std::size_t head_ = 0;
};

}  // namespace subproxy
