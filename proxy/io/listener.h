// A listening socket (IPv4 or IPv6-only, optionally IP_TRANSPARENT) on the event loop.
#pragma once
#include <event2/listener.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ops/config.h"
#include "io/event_handles.h"

namespace subproxy {

struct EvListenerFree {
    void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};

class Listener {
public:
    using AcceptFn = std::function<void(evutil_socket_t fd, const sockaddr* peer, int peerLen)>;

    // Binds and listens; throws std::runtime_error naming the address on failure.  `busyReply`
    // is what a customer gets when the process is out of file descriptors.  Shared: one socket
    // per worker on the same address (SO_REUSEPORT), the kernel spreading the connections; the
    // first worker's also checks that no other process holds the address.
    enum class Sharing { None, First, Join };
    Listener(event_base* base, const ListenerConfig& config, std::string busyReply, AcceptFn onAccept,
             Sharing sharing = Sharing::None);

    const ListenerConfig& config() const { return config_; }
    void enable(bool on);
    std::string name() const;

private:
    static void acceptCallback(evconnlistener*, evutil_socket_t fd, sockaddr* peer, int len, void* self);
    static void errorCallback(evconnlistener*, void* self);
    static void resumeCallback(evutil_socket_t, short, void* self);
    // accept() failed (EMFILE and the like): answer the waiting customer from the reserve
    // descriptor, pause accepting briefly, and log once per interval instead of per failure.
    void acceptFailed(int error);

    ListenerConfig config_;
    std::string busyReply_;
    AcceptFn onAccept_;
    std::unique_ptr<evconnlistener, EvListenerFree> listener_;
    EventPtr resume_;
    bool paused_ = false;
    std::uint64_t failuresSinceReport_ = 0;
    std::uint64_t refusedSinceReport_ = 0;
    std::chrono::steady_clock::time_point lastReport_{};
};

}  // namespace subproxy
