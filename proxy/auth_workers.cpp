#include "auth_workers.h"

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace subproxy {

struct AuthWorkers::Shared {
    std::mutex mutex;
    std::condition_variable wanted;
    std::deque<std::pair<Work, Done>> queue;
    std::deque<Done> finished;
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
    wake_ = event_new(base, shared_->pipe[0], EV_READ | EV_PERSIST, &AuthWorkers::wakeCallback, this);
    event_add(wake_, nullptr);
    std::lock_guard<std::mutex> lock(shared_->mutex);
    for (int i = 0; i < initialThreads; ++i) {
        addThread();
    }
}

AuthWorkers::~AuthWorkers() {
    {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->stopping = true;
        shared_->queue.clear();
    }
    shared_->wanted.notify_all();
    event_free(wake_);
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
            auto job = std::move(shared->queue.front());
            shared->queue.pop_front();
            ++shared->busy;
            lock.unlock();
            job.first();
            lock.lock();
            --shared->busy;
            shared->finished.push_back(std::move(job.second));
            const char one = 1;
            [[maybe_unused]] ssize_t n = ::write(shared->pipe[1], &one, 1);  // full pipe: already awake
        }
    }).detach();
}

bool AuthWorkers::submit(Work work, Done done) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    const int idle = shared_->threads - shared_->busy - static_cast<int>(shared_->queue.size());
    if (idle <= 0) {
        if (shared_->threads >= maxThreads_) {
            return false;
        }
        addThread();
    }
    shared_->queue.emplace_back(std::move(work), std::move(done));
    shared_->wanted.notify_one();
    return true;
}

int AuthWorkers::threads() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return shared_->threads;
}

int AuthWorkers::busy() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return shared_->busy;
}

void AuthWorkers::wakeCallback(evutil_socket_t fd, short, void* self) {
    char drain[256];
    while (::read(fd, drain, sizeof drain) > 0) {
    }
    auto* workers = static_cast<AuthWorkers*>(self);
    std::deque<Done> finished;
    {
        std::lock_guard<std::mutex> lock(workers->shared_->mutex);
        finished.swap(workers->shared_->finished);
    }
    for (auto& done : finished) {
        done();
    }
}

}  // namespace subproxy
