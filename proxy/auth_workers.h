// Runs blocking password checks (Cyrus SASL steps: saslauthd sockets, Berkeley DB files) on
// worker threads, so a slow or hung backend never stalls the event loop.  Completions run on
// the loop thread, woken through a pipe.  Workers never touch bufferevents.
#pragma once
#include <event2/event.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace subproxy {

class AuthWorkers {
public:
    using Work = std::function<void()>;  // runs on a worker thread
    using Done = std::function<void()>;  // runs on the loop thread afterwards

    AuthWorkers(event_base* base, int initialThreads, int maxThreads);
    ~AuthWorkers();
    AuthWorkers(const AuthWorkers&) = delete;
    AuthWorkers& operator=(const AuthWorkers&) = delete;

    // False when every thread is busy and none may be added (all backends hung): the caller
    // answers 454 rather than queueing without bound.
    bool submit(Work work, Done done);
    int threads() const;
    int busy() const;

private:
    struct Shared;  // outlives this object while hung threads still hold it
    static void wakeCallback(evutil_socket_t fd, short, void* self);
    void addThread();

    std::shared_ptr<Shared> shared_;
    event* wake_ = nullptr;
    int maxThreads_;
};

}  // namespace subproxy
