// Updates kept while the shared state's server (Redis) is unreachable, replayed in order when it
// is back (issue 11).  Bounded: at the limit the oldest update is dropped, and counted, so an
// outage of any length costs a fixed amount of memory and the newest state survives it.  Pure:
// io/redis_client.cpp keeps its commands in one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

namespace subproxy {

template <class T>
class ReplayQueue {
public:
    explicit ReplayQueue(std::size_t limit) : limit_(limit) {}

    // The newest update.  A full queue drops its oldest first; a limit of 0 keeps nothing.
    void push(T item) {
        if (limit_ == 0) {
            ++dropped_;
            return;
        }
        if (items_.size() >= limit_) {
            items_.pop_front();
            ++dropped_;
        }
        items_.push_back(std::move(item));
    }
    // An update older than every one kept (sent, but its reply never came): back at the head.
    // A full queue drops it, the oldest of all.
    void pushOldest(T item) {
        if (items_.size() >= limit_) {
            ++dropped_;
            return;
        }
        items_.push_front(std::move(item));
    }
    bool empty() const { return items_.empty(); }
    std::size_t size() const { return items_.size(); }
    std::size_t limit() const { return limit_; }
    // The oldest; the queue is not empty.
    T pop() {
        T item = std::move(items_.front());
        items_.pop_front();
        return item;
    }
    std::uint64_t dropped() const { return dropped_; }  // since construction

private:
    std::size_t limit_;
    std::deque<T> items_;
    std::uint64_t dropped_ = 0;
};

}  // namespace subproxy
