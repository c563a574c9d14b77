// A small request/answer server on the event loop, over TCP or a unix socket: each connection
// sends one request, gets one answer and is closed (the status endpoint).  Bounded so that a
// local user cannot hold the process's descriptors: at most `maxConnections` at once (more are
// answered `busy` and closed at accept), requests of at most `maxRequest` bytes, and a
// deadline per connection.
#pragma once
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "io/event_handles.h"

namespace subproxy {

class RequestServer {
public:
    // The answer once `input` holds a whole request; nullopt while more is needed.
    using Handler = std::function<std::optional<std::string>(std::string_view input)>;

    struct Limits {
        int maxConnections = 32;
        std::size_t maxRequest = 8192;
        int timeoutSeconds = 10;
        std::string busy;      // sent when maxConnections are open
        std::string tooLarge;  // sent when a request outgrows maxRequest
    };

    // TCP on a numeric address ("127.0.0.1", "::1") and port.  Throws std::runtime_error.
    RequestServer(event_base* base, const std::string& address, int port, Limits limits, Handler handler);
    // A unix socket at `path` (replacing a stale one), mode `mode`, owned by uid/gid when they
    // are not -1.  Throws std::runtime_error.
    RequestServer(event_base* base, const std::string& path, mode_t mode, uid_t uid, gid_t gid, Limits limits,
                  Handler handler);
    ~RequestServer();

    RequestServer(const RequestServer&) = delete;
    RequestServer& operator=(const RequestServer&) = delete;

private:
    RequestServer(event_base* base, Limits limits, Handler handler);
    void listenOn(evutil_socket_t fd, const std::string& name);
    void onAccept(evutil_socket_t fd);
    void onRead(bufferevent* bev);
    void finish(bufferevent* bev);
    static void acceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self);
    static void readCb(bufferevent* bev, void* self);
    static void writeCb(bufferevent* bev, void* self);
    static void eventCb(bufferevent* bev, short, void* self);
    static void errorCb(evconnlistener*, void* self);
    static void resumeCb(evutil_socket_t, short, void* self);

    struct ListenerFree {
        void operator()(evconnlistener* l) const { evconnlistener_free(l); }
    };
    event_base* base_;
    Limits limits_;
    Handler handler_;
    std::unique_ptr<evconnlistener, ListenerFree> listener_;
    // Owned: freed by finish() or the destructor; with the time each must be done by (the
    // read timeout is idle time: a byte every few seconds would reset it for ever).
    std::unordered_map<bufferevent*, std::chrono::steady_clock::time_point> conns_;
    EventPtr resume_;  // accept() failed (EMFILE): listening again after a pause, not spinning
    std::string unixPath_;                    // removed again by the destructor
};

}  // namespace subproxy
