#include <sys/eventfd.h>
#include <unistd.h>

#include "io/mailbox.h"

#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>

namespace subproxy {

struct Mailbox::Box {
    std::mutex mutex;
    std::deque<Job> jobs;
    bool wakeSent = false;  // the eventfd is already signalled for what is queued
    bool closed = false;    // the loop has gone: drop what comes
    int fd = -1;

    ~Box() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

void Mailbox::Address::post(Job job) const {
    if (!box_) {
        return;
    }
    std::unique_lock<std::mutex> lock(box_->mutex);
    if (box_->closed) {
        lock.unlock();
        return;  // `job` (and what it captured) goes here, outside the lock
    }
    box_->jobs.push_back(std::move(job));
    if (!box_->wakeSent) {
        box_->wakeSent = true;
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(box_->fd, &one, sizeof one);
    }
}

Mailbox::Mailbox(event_base* base) : box_(std::make_shared<Box>()) {
    box_->fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (box_->fd < 0) {
        throw std::runtime_error("mailbox: eventfd failed");
    }
    wake_.reset(event_new(base, box_->fd, EV_READ | EV_PERSIST, &Mailbox::wakeCb, this));
    if (!wake_ || event_add(wake_.get(), nullptr) != 0) {
        throw std::runtime_error("mailbox: cannot watch the eventfd");
    }
}

Mailbox::~Mailbox() {
    std::deque<Job> dropped;  // destroyed outside the lock
    std::lock_guard<std::mutex> lock(box_->mutex);
    box_->closed = true;
    dropped.swap(box_->jobs);
}

void Mailbox::wakeCb(evutil_socket_t fd, short, void* self) {
    // Read the counter before taking the batch: a post after the swap below sees wakeSent
    // false and signals again, so nothing waits for a later wake-up.
    std::uint64_t count = 0;
    [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
    auto& box = *static_cast<Mailbox*>(self)->box_;
    std::deque<Job> batch;
    {
        std::lock_guard<std::mutex> lock(box.mutex);
        batch.swap(box.jobs);
        box.wakeSent = false;
    }
    for (auto& job : batch) {
        job();
    }
}

}  // namespace subproxy
