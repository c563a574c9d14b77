#include "io/auth_workers.h"

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace subproxy {

struct AuthWorkers::Shared {
    struct Job {
        Work work;
        Done done;
        Clock::time_point deadline;
    };
    std::mutex mutex;
    std::condition_variable wanted;
    std::deque<Job> queue;
    std::deque<Done> finished;
    bool wakeSent = false;  // a byte is in the pipe for `finished`: one wake-up per batch
    int threads = 0;
    int busy = 0;
    bool stopping = false;
    int pipe[2] = {-1, -1};

    ~Shared() {
        for (int fd : pipe) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
};

AuthWorkers::AuthWorkers(event_base* base, int initialThreads, int maxThreads)
    : shared_(std::make_shared<Shared>()), maxThreads_(maxThreads) {
    if (::pipe2(shared_->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        throw std::runtime_error("auth workers: pipe failed");
    }
    wake_.reset(event_new(base, shared_->pipe[0], EV_READ | EV_PERSIST, &AuthWorkers::wakeCallback, this));
    if (!wake_ || event_add(wake_.get(), nullptr) != 0) {
        throw std::runtime_error("auth workers: cannot watch the wake-up pipe");
    }
    std::lock_guard<std::mutex> lock(shared_->mutex);
    for (int i = 0; i < initialThreads; ++i) {
        addThread();
    }
}

AuthWorkers::~AuthWorkers() {
    std::deque<Shared::Job> dropped;  // destroyed outside the lock
    {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->stopping = true;
        dropped.swap(shared_->queue);
    }
    shared_->wanted.notify_all();
    // Threads are detached: one stuck in a hung saslauthd read must not block our exit.
}

void AuthWorkers::addThread() {  // with shared_->mutex held
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
            const bool expired = Clock::now() >= job.deadline;
            if (!expired) {
                job.work();
            }
            job.work = nullptr;  // its captures (a sasl_conn_t) are freed here, not under the lock
            if (expired) {
                job.done = nullptr;
            }
            lock.lock();
            --shared->busy;
            if (!job.done) {
                continue;
            }
            shared->finished.push_back(std::move(job.done));
            if (!shared->wakeSent) {
                shared->wakeSent = true;
                const char one = 1;
                [[maybe_unused]] ssize_t n = ::write(shared->pipe[1], &one, 1);
            }
        }
    }).detach();
}

void AuthWorkers::submit(Work work, Done done, Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->queue.push_back(Shared::Job{std::move(work), std::move(done), deadline});
    // Grow while jobs outnumber the idle threads: a thread held by a hung backend is busy,
    // so the others keep serving the queue.
    const auto idle = static_cast<std::size_t>(shared_->threads - shared_->busy);
    if (shared_->queue.size() > idle && shared_->threads < maxThreads_) {
        addThread();
    }
    shared_->wanted.notify_one();
}

AuthWorkers::Load AuthWorkers::load() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return Load{shared_->threads, shared_->busy, shared_->queue.size()};
}

void AuthWorkers::wakeCallback(evutil_socket_t fd, short, void* self) {
    // Drain the pipe before taking the batch: a worker that finishes after the swap below
    // sees wakeSent false and writes a fresh byte, so nothing waits for a later wake-up.
    char drain[64];
    while (::read(fd, drain, sizeof drain) > 0) {
    }
    auto* workers = static_cast<AuthWorkers*>(self);
    std::deque<Done> finished;
    {
        std::lock_guard<std::mutex> lock(workers->shared_->mutex);
        finished.swap(workers->shared_->finished);
        workers->shared_->wakeSent = false;
    }
    for (auto& done : finished) {
        done();
    }
}

}  // namespace subproxy
