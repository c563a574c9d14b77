// A value that several threads share, reachable only under its mutex: the event loops record
// into it, the control loop reads and saves it.  Pure classes (ops/, defence/) stay free of
// threads; the glue wraps them in this.
#pragma once
#include <mutex>
#include <utility>

namespace subproxy {

template <class T>
class Locked {
public:
    template <class... Args>
    explicit Locked(Args&&... args) : value_(std::forward<Args>(args)...) {}

    // Runs f(T&) under the mutex and returns what it returns.  Keep f short: no I/O.
    template <class F>
    decltype(auto) with(F&& f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::forward<F>(f)(value_);
    }
    template <class F>
    decltype(auto) with(F&& f) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::forward<F>(f)(value_);
    }

private:
    mutable std::mutex mutex_;
    T value_;
};

}  // namespace subproxy
