// A listening socket (IPv4 or IPv6-only, optionally IP_TRANSPARENT) on the event loop.
#pragma once
#include <event2/listener.h>

#include <functional>
#include <memory>

#include "config.h"

namespace subproxy {

struct EvListenerFree {
    void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};

class Listener {
public:
    using AcceptFn = std::function<void(evutil_socket_t fd, const sockaddr* peer, int peerLen)>;

    // Binds and listens; throws std::runtime_error naming the address on failure.
    Listener(event_base* base, const ListenerConfig& config, AcceptFn onAccept);

    const ListenerConfig& config() const { return config_; }
    void enable(bool on);
    std::string name() const;

private:
    static void acceptCallback(evconnlistener*, evutil_socket_t fd, sockaddr* peer, int len, void* self);
    static void errorCallback(evconnlistener*, void* self);

    ListenerConfig config_;
    AcceptFn onAccept_;
    std::unique_ptr<evconnlistener, EvListenerFree> listener_;
};

}  // namespace subproxy
