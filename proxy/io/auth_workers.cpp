#include "io/auth_workers.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace subproxy {

struct AuthPool::Shared {
    struct Job {
        Work work;
        Done done;
        Clock::time_point deadline;
        Mailbox::Address replyTo;
    };
    std::mutex mutex;
    std::condition_variable wanted;
    std::deque<Job> queue;
    int threads = 0;
    int busy = 0;
    bool stopping = false;
};

AuthPool::AuthPool(int initialThreads, int maxThreads) : shared_(std::make_shared<Shared>()), maxThreads_(maxThreads) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    for (int i = 0; i < initialThreads; ++i) {
        addThread();
    }
}

AuthPool::~AuthPool() {
    std::deque<Shared::Job> dropped;  // destroyed outside the lock
    {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->stopping = true;
        dropped.swap(shared_->queue);
    }
    shared_->wanted.notify_all();
    // Threads are detached: one stuck in a hung saslauthd read must not block our exit.
}

void AuthPool::addThread() {  // with shared_->mutex held
    ++shared_->threads;
    std::thread([shared = shared_] {
        std::unique_lock<std::mutex> lock(shared->mutex);
        for (;;) {
            shared->wanted.wait(lock, [&] { return shared->stopping || !shared->queue.empty(); });
            if (shared->stopping) {
                --shared->threads;
                return;
            }
            Shared::Job job = std::move(shared->queue.front());
            shared->queue.pop_front();
            ++shared->busy;
            lock.unlock();
            // Its session answered 454 at the deadline and ignores a late result: running the
            // check would only take the backend's time from the sessions still waiting.
            if (Clock::now() < job.deadline) {
                job.work();
                job.work = nullptr;  // its captures (a sasl_conn_t) are freed here, on this thread
                job.replyTo.post(std::move(job.done));
            }
            job = Shared::Job{};  // not under the lock
            lock.lock();
            --shared->busy;
        }
    }).detach();
}

void AuthPool::submit(Work work, Done done, Clock::time_point deadline, Mailbox::Address replyTo) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->queue.push_back(Shared::Job{std::move(work), std::move(done), deadline, std::move(replyTo)});
    // Grow while jobs outnumber the idle threads: a thread held by a hung backend is busy,
    // so the others keep serving the queue.
    const auto idle = static_cast<std::size_t>(shared_->threads - shared_->busy);
    if (shared_->queue.size() > idle && shared_->threads < maxThreads_) {
        addThread();
    }
    shared_->wanted.notify_one();
}

AuthPool::Load AuthPool::load() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return Load{shared_->threads, shared_->busy, shared_->queue.size()};
}

}  // namespace subproxy
