#include "io/upstream.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>

#include "wire/text_util.h"

namespace subproxy {

Upstream::Upstream(event_base* base, evdns_base* dns, SSL_CTX* tls, const Config& config, UpstreamIdentity identity,
                   bool sendLogin, UpstreamEvents& events, UpstreamDialog::Purpose purpose)
    : base_(base),
      dns_(dns),
      tls_(tls),
      config_(config),
      identity_(std::move(identity)),
      sendLogin_(sendLogin),
      events_(events),
      purpose_(purpose) {}

void Upstream::start() { tryNextHost({}, {}); }

void Upstream::shutdown() {
    dead_ = true;
    bev_.reset();
}

void Upstream::tryNextHost(std::string failed, const std::string& why) {
    bev_.reset();
    tlsUp_ = false;
    connected_ = false;
    reader_.clear();
    parser_ = ReplyParser{};
    const auto& hosts = config_.upstream.hosts;
    if (nextHost_ >= hosts.size()) {
        UpstreamFailure kind = UpstreamFailure::Connect;
        events_.upstreamFailed(kind, failed.empty() ? "no MSA host configured" : failed + ": " + why);
        return;
    }
    std::string host = hosts[nextHost_++];
    if (host == "original") {
        host = identity_.client.destAddress;  // the address the customer dialled
    }
    const int port = config_.upstream.port;
    current_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    verifyName_ = config_.upstream.serverName.empty() ? host : config_.upstream.serverName;
    dialog_.emplace(config_.upstream, config_.upstream.heloName.empty() ? config_.hostname : config_.upstream.heloName,
                    identity_, false, sendLogin_, purpose_);
    if (!failed.empty()) {
        events_.upstreamFailover(failed, why, current_);
    }

    bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS));
    bufferevent_setcb(bev_.get(), &Upstream::readCb, &Upstream::writeCb, &Upstream::eventCb, this);
    const timeval timeout{config_.upstream.connectTimeout, 0};
    bufferevent_set_timeouts(bev_.get(), &timeout, &timeout);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    // Numeric addresses need no resolver; names go through evdns (never a blocking lookup).
    if (bufferevent_socket_connect_hostname(bev_.get(), dns_, AF_UNSPEC, host.c_str(), port) != 0) {
        tryNextHost(current_, "cannot start connecting");
    }
}

void Upstream::failCurrent(UpstreamFailure kind, const std::string& detail) {
    if (dead_) {
        return;
    }
    if (ready_) {
        bev_.reset();
        events_.upstreamFailed(kind, current_ + ": " + detail);
        return;
    }
    // Before the session is established another host may still do.
    if (nextHost_ < config_.upstream.hosts.size()) {
        tryNextHost(current_, detail);
        return;
    }
    bev_.reset();
    events_.upstreamFailed(kind, current_ + ": " + detail);
}

void Upstream::wrapTls() {
    SslPtr ssl = makeUpstreamSsl(tls_, verifyName_, config_.upstream.verify);
    if (!ssl) {
        failCurrent(UpstreamFailure::Tls, "SSL_new: " + opensslErrors());
        return;
    }
    bufferevent* plain = bev_.release();
    // Timeouts belong on the outermost bufferevent only: the filter passes the socket's
    // timeout events up as its own, so a timer left here would cut the relay after
    // connect_timeout of MSA silence, whatever the phase (issue 7).
    clearTimeouts(plain);
    bufferevent* filter = bufferevent_openssl_filter_new(base_, plain, ssl.get(), BUFFEREVENT_SSL_CONNECTING,
                                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!filter) {
        ssl.release();  // freed by libevent on failure with CLOSE_ON_FREE (libevent#1774)
        bufferevent_free(plain);
        failCurrent(UpstreamFailure::Tls, "cannot start TLS");
        return;
    }
    ssl.release();  // owned by the filter now
    bev_.reset(filter);
    bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
    bufferevent_setcb(filter, &Upstream::readCb, &Upstream::writeCb, &Upstream::eventCb, this);
    const timeval timeout{config_.upstream.connectTimeout, 0};
    bufferevent_set_timeouts(filter, &timeout, &timeout);
    bufferevent_enable(filter, EV_READ | EV_WRITE);
}

void Upstream::apply(const UpstreamDialog::Action& action) {
    if (action.failed) {
        failCurrent(action.failure, action.detail);
        return;
    }
    if (!action.send.empty()) {
        send(action.send);
    }
    if (action.startTls) {
        if (reader_.buffered() > 0 || evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0) {
            // Bytes after the 220 to STARTTLS are a response-injection attempt (CVE-2021-38371).
            failCurrent(UpstreamFailure::Protocol, "MSA sent data after its 220 to STARTTLS");
            return;
        }
        wrapTls();
    }
    if (action.ready) {
        ready_ = true;
        clearTimeouts(bev_.get());  // from now on the session sets one per phase (setReplyTimeout)
        bufferevent_setwatermark(bev_.get(), EV_WRITE, kLowWater, 0);
        events_.upstreamReady(dialog_->caps());
    }
}

void Upstream::send(std::string_view bytes) {
    if (bev_) {
        bufferevent_write(bev_.get(), bytes.data(), bytes.size());
    }
}

void Upstream::setReplyTimeout(int seconds) {
    if (bev_ && ready_) {
        setReadTimeout(bev_.get(), seconds);
    }
}

std::string Upstream::tlsSummary() const {
    SSL* ssl = bev_ ? bufferevent_openssl_get_ssl(bev_.get()) : nullptr;
    if (!ssl) {
        return "no TLS";
    }
    return std::string(SSL_get_version(ssl)) + (SSL_session_reused(ssl) ? " resumed" : "");
}

std::size_t Upstream::outputPending() const {
    return bev_ ? evbuffer_get_length(bufferevent_get_output(bev_.get())) : 0;
}

void Upstream::onRead() {
    evbuffer* in = bufferevent_get_input(bev_.get());
    while (const std::size_t n = evbuffer_get_length(in)) {
        std::string chunk(n, '\0');
        evbuffer_remove(in, chunk.data(), n);
        reader_.append(chunk);
    }
    for (;;) {
        LineResult r = reader_.next();
        if (r.status == LineResult::Status::NeedMore) {
            return;
        }
        if (r.status != LineResult::Status::Line) {
            failCurrent(UpstreamFailure::Protocol, "malformed reply line from the MSA");
            return;
        }
        const auto status = parser_.feedLine(r.line);
        if (status == ReplyParser::Status::Invalid) {
            failCurrent(UpstreamFailure::Protocol, "malformed reply from the MSA: " + printable(r.line));
            return;
        }
        if (status == ReplyParser::Status::NeedMore) {
            continue;
        }
        Reply reply = parser_.take();
        if (!ready_) {
            bufferevent* before = bev_.get();
            apply(dialog_->onReply(reply));
            if (dead_ || bev_.get() != before || !bev_) {
                return;  // transport swapped or session failed: nothing more to read here
            }
            continue;
        }
        events_.upstreamReply(reply);
        if (dead_ || !bev_) {
            return;  // the session dropped us
        }
    }
}

std::string Upstream::describeError(short what) {
    std::string detail;
    if (what & BEV_EVENT_TIMEOUT) {
        return "timeout";
    }
    const int err = EVUTIL_SOCKET_ERROR();
    if (err && !(what & BEV_EVENT_EOF)) {
        detail = evutil_socket_error_to_string(err);
    }
    if (const int dnsErr = bufferevent_socket_get_dns_error(bev_.get())) {
        detail = std::string("cannot resolve: ") + evutil_gai_strerror(dnsErr);
    }
    while (unsigned long e = bufferevent_get_openssl_error(bev_.get())) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        detail += (detail.empty() ? "" : "; ") + std::string(buf);
    }
    if (what & BEV_EVENT_EOF) {
        detail = detail.empty() ? "connection closed by the MSA" : detail;
    }
    return detail.empty() ? "connection error" : detail;
}

void Upstream::onEvent(short what) {
    if (what & BEV_EVENT_CONNECTED) {
        if (!connected_) {
            connected_ = true;
            if (config_.upstream.proxyProtocol) {
                // Before anything else, TLS included (Postfix smtpd_upstream_proxy_protocol):
                // the MSA learns the customer's address from it instead of from XCLIENT.
                send(upstreamProxyHeader(identity_.client));
            }
            if (config_.upstream.tls == UpstreamTls::Implicit) {
                wrapTls();
            }
            return;
        }
        // TLS handshake finished (the filter reports it as CONNECTED).
        tlsUp_ = true;
        apply(dialog_->onTlsEstablished());
        return;
    }
    if (connected_ && !tlsUp_ && bufferevent_openssl_get_ssl(bev_.get())) {
        SSL* ssl = bufferevent_openssl_get_ssl(bev_.get());
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            failCurrent(UpstreamFailure::Verify, std::string("MSA certificate not trusted for ") + verifyName_ +
                                                     ": " + X509_verify_cert_error_string(verify));
            return;
        }
        failCurrent(UpstreamFailure::Tls, "TLS handshake failed: " + describeError(what));
        return;
    }
    const UpstreamFailure kind = (what & BEV_EVENT_TIMEOUT) ? UpstreamFailure::Timeout
                                 : ready_                   ? UpstreamFailure::Lost
                                                            : UpstreamFailure::Connect;
    failCurrent(kind, describeError(what));
}

void Upstream::readCb(bufferevent*, void* self) {
    auto* up = static_cast<Upstream*>(self);
    if (!up->dead_) {
        up->onRead();
    }
}

void Upstream::writeCb(bufferevent*, void* self) {
    auto* up = static_cast<Upstream*>(self);
    if (up->ready_ && !up->dead_) {
        up->events_.upstreamDrained();
    }
}

void Upstream::eventCb(bufferevent*, short what, void* self) {
    auto* up = static_cast<Upstream*>(self);
    if (!up->dead_) {
        up->onEvent(what);
    }
}

}  // namespace subproxy
