// Ownership and small helpers for libevent bufferevents, plain or OpenSSL-filtered.
#pragma once
#include <event2/bufferevent.h>

#include <memory>

namespace subproxy {

struct BevFree {
    void operator()(bufferevent* bev) const;  // sends close_notify on TLS, then frees
};
using BevPtr = std::unique_ptr<bufferevent, BevFree>;

// Read timeout of `seconds`, or none for 0; writes are not timed.
void setReadTimeout(bufferevent* bev, int seconds);
// No read or write timeout.  Call it on a plain bufferevent before wrapping it in an OpenSSL
// filter: the filter passes the socket's timeout events up as its own, so only the outermost
// bufferevent may carry a timer.
void clearTimeouts(bufferevent* bev);

}  // namespace subproxy
