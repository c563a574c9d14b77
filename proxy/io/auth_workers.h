// Runs blocking password checks (Cyrus SASL steps: saslauthd sockets, Berkeley DB files) on
// worker threads, so a slow or hung backend never stalls the event loop.  Workers never touch
// bufferevents; completions run on the loop thread, a whole batch per wake-up.
//
// Jobs wait in a queue rather than being refused when every thread is busy: a burst of logins
// (2000 mail programs reconnecting after an outage) is answered at the backend's speed.  The
// queue needs no bound of its own: each session has at most one job in flight (so
// limits.max_sessions bounds it), and each job carries the session's deadline (auth.timeout):
// a job still queued then is dropped without running, because its session has already
// answered 454.
#pragma once
#include <event2/event.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "io/event_handles.h"

namespace subproxy {

class AuthWorkers {
public:
    using Work = std::function<void()>;  // runs on a worker thread
    using Done = std::function<void()>;  // runs on the loop thread afterwards
    using Clock = std::chrono::steady_clock;

    // `initialThreads` start at once; the pool grows up to `maxThreads` while jobs wait and
    // every thread is busy (a hung backend holds its thread), and never shrinks.
    AuthWorkers(event_base* base, int initialThreads, int maxThreads);
    ~AuthWorkers();
    AuthWorkers(const AuthWorkers&) = delete;
    AuthWorkers& operator=(const AuthWorkers&) = delete;

    // Queues `work`; `done` follows on the loop unless the job was dropped at `deadline`.
    void submit(Work work, Done done, Clock::time_point deadline);

    struct Load {
        int threads = 0;
        int busy = 0;
        std::size_t queued = 0;
    };
    Load load() const;  // for the log line of a check that timed out

private:
    struct Shared;  // outlives this object while hung threads still hold it
    static void wakeCallback(evutil_socket_t fd, short, void* self);
    void addThread();

    std::shared_ptr<Shared> shared_;
    EventPtr wake_;
    int maxThreads_;
};

}  // namespace subproxy
