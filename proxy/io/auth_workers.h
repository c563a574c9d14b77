// Runs blocking password checks (Cyrus SASL steps: saslauthd sockets, Berkeley DB files) on
// threads of one pool shared by every event loop, so a slow or hung backend never stalls a
// loop.  The threads never touch bufferevents; each completion goes back to the loop that
// asked, through its Mailbox (mailbox.h), a whole batch per wake-up.
//
// Jobs wait in a queue rather than being refused when every thread is busy: a burst of logins
// (2000 mail programs reconnecting after an outage) is answered at the backend's speed.  The
// queue needs no bound of its own: each session has at most one job in flight (so
// limits.max_sessions bounds it), and each job carries the session's deadline (auth.timeout):
// a job still queued then is dropped without running, because its session has already
// answered 454.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "io/mailbox.h"

namespace subproxy {

class AuthPool {
public:
    using Work = std::function<void()>;  // runs on a pool thread
    using Done = std::function<void()>;  // runs on the asking loop afterwards
    using Clock = std::chrono::steady_clock;

    // `initialThreads` start at once; the pool grows up to `maxThreads` while jobs wait and
    // every thread is busy (a hung backend holds its thread), and never shrinks.
    AuthPool(int initialThreads, int maxThreads);
    ~AuthPool();
    AuthPool(const AuthPool&) = delete;
    AuthPool& operator=(const AuthPool&) = delete;

    // Queues `work`; `done` is posted to `replyTo` unless the job was dropped at `deadline`.
    void submit(Work work, Done done, Clock::time_point deadline, Mailbox::Address replyTo);

    struct Load {
        int threads = 0;
        int busy = 0;
        std::size_t queued = 0;
    };
    Load load() const;  // for the log line of a check that timed out

private:
    struct Shared;  // outlives this object while hung threads still hold it
    void addThread();

    std::shared_ptr<Shared> shared_;
    int maxThreads_;
};

// One event loop's door to the pool: its completions come back to this loop.
class AuthWorkers {
public:
    using Work = AuthPool::Work;
    using Done = AuthPool::Done;
    using Clock = AuthPool::Clock;
    using Load = AuthPool::Load;

    AuthWorkers(AuthPool& pool, Mailbox::Address loop) : pool_(pool), loop_(std::move(loop)) {}
    void submit(Work work, Done done, Clock::time_point deadline) {
        pool_.submit(std::move(work), std::move(done), deadline, loop_);
    }
    Load load() const { return pool_.load(); }

private:
    AuthPool& pool_;
    Mailbox::Address loop_;
};

}  // namespace subproxy
