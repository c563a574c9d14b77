// Runs functions on one event loop, posted from any thread: the one way threads talk to a loop
// (the control loop tells the workers to reload or drain; the auth threads hand back finished
// password checks).  A queue under a mutex and an eventfd the loop watches, one wake-up per
// batch: a burst of 1000 finished checks costs the loop one read, not 1000.
//
// Posting never blocks on the loop and never fails: a job posted after the loop's Mailbox is
// gone (a worker that has drained and stopped) is dropped, which is why posters hold a
// Mailbox::Address (shared) rather than a reference to the Mailbox itself.
#pragma once
#include <event2/event.h>

#include <functional>
#include <memory>

#include "io/event_handles.h"

namespace subproxy {

class Mailbox {
public:
    using Job = std::function<void()>;
    struct Box;  // the queue and the eventfd; outlives the Mailbox while posters hold it

    // Where jobs for this loop are posted; cheap to copy, safe from any thread, harmless after
    // the loop has gone.
    class Address {
    public:
        Address() = default;
        explicit Address(std::shared_ptr<Box> box) : box_(std::move(box)) {}
        void post(Job job) const;
        explicit operator bool() const { return static_cast<bool>(box_); }

    private:
        std::shared_ptr<Box> box_;
    };

    explicit Mailbox(event_base* base);  // throws std::runtime_error
    ~Mailbox();                          // drops the jobs not yet run; later posts are dropped
    Mailbox(const Mailbox&) = delete;
    Mailbox& operator=(const Mailbox&) = delete;

    Address address() const { return Address(box_); }
    void post(Job job) const { address().post(std::move(job)); }

private:
    static void wakeCb(evutil_socket_t fd, short, void* self);

    std::shared_ptr<Box> box_;
    EventPtr wake_;
};

}  // namespace subproxy
