#include "io/bufferevents.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

namespace subproxy {

void BevFree::operator()(bufferevent* bev) const {
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
        // libevent never sends close_notify itself (api-facts §1).
        SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        SSL_shutdown(ssl);
    }
    bufferevent_free(bev);
}

void setReadTimeout(bufferevent* bev, int seconds) {
    const timeval timeout{seconds, 0};
    bufferevent_set_timeouts(bev, seconds > 0 ? &timeout : nullptr, nullptr);
}

void clearTimeouts(bufferevent* bev) { bufferevent_set_timeouts(bev, nullptr, nullptr); }

}  // namespace subproxy
