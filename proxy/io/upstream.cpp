#include "io/upstream.h"

#include <event2/event.h>
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
      identity_(std::make_unique<UpstreamIdentity>(std::move(identity))),
      sendLogin_(sendLogin),
      events_(events),
      purpose_(purpose),
      deferred_(evtimer_new(base, &Upstream::deferredCb, this)) {}

Upstream::~Upstream() { stopResolving(); }

void Upstream::start() { tryNextHost({}, {}); }

void Upstream::shutdown() {
    dead_ = true;
    stopResolving();
    evtimer_del(deferred_.get());
    stream_.reset();
}

void Upstream::stopResolving() {
    if (resolving_) {
        evdns_getaddrinfo_cancel(resolving_);  // its callback comes later, as EVUTIL_EAI_CANCEL
        resolving_ = nullptr;
    }
}

void Upstream::tryNextHost(std::string failed, const std::string& why) {
    stopResolving();
    evtimer_del(deferred_.get());
    stream_.reset();
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
        host = identity_->client.destAddress;  // the address the customer dialled
    }
    const int port = config_.upstream.port;
    current_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    verifyName_ = config_.upstream.serverName.empty() ? host : config_.upstream.serverName;
    dialog_ = std::make_unique<UpstreamDialog>(
        config_.upstream, config_.upstream.heloName.empty() ? config_.hostname : config_.upstream.heloName, *identity_,
        false, sendLogin_, purpose_);
    if (!failed.empty()) {
        events_.upstreamFailover(failed, why, current_);
    }
    // The whole connect, name lookup included, is bounded by connect_timeout; the stream
    // takes the bound over once it exists.
    failLater(UpstreamFailure::Timeout, "timeout", config_.upstream.connectTimeout);
    // Numeric addresses need no resolver (evdns answers them at once, inside this call);
    // names go through evdns, never a blocking lookup.
    evutil_addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    resolving_ = evdns_getaddrinfo(dns_, host.c_str(), std::to_string(port).c_str(), &hints, &Upstream::resolvedCb, this);
}

void Upstream::resolvedCb(int result, evutil_addrinfo* addresses, void* self) {
    if (result == EVUTIL_EAI_CANCEL) {
        return;  // the Upstream that asked may be gone
    }
    auto* up = static_cast<Upstream*>(self);
    up->resolving_ = nullptr;
    if (result != 0 || !addresses) {
        up->failLater(UpstreamFailure::Connect, std::string("cannot resolve: ") + evutil_gai_strerror(result), 0);
    } else {
        // The first address, as bufferevent_socket_connect_hostname did; failover is by host.
        int error = 0;
        up->stream_ = Stream::connect(up->base_, addresses->ai_addr, static_cast<socklen_t>(addresses->ai_addrlen),
                                      *up, error);
        if (!up->stream_) {
            up->failLater(UpstreamFailure::Connect, evutil_socket_error_to_string(error), 0);
        } else {
            evtimer_del(up->deferred_.get());
            up->stream_->setIdleTimeout(up->config_.upstream.connectTimeout);
        }
    }
    if (addresses) {
        evutil_freeaddrinfo(addresses);
    }
}

void Upstream::failLater(UpstreamFailure kind, std::string detail, int seconds) {
    deferredKind_ = kind;
    deferredDetail_ = std::move(detail);
    const timeval wait{seconds, 0};
    evtimer_add(deferred_.get(), &wait);
}

void Upstream::deferredCb(evutil_socket_t, short, void* self) {
    auto* up = static_cast<Upstream*>(self);
    up->stopResolving();
    up->failCurrent(up->deferredKind_, up->deferredDetail_);
}

void Upstream::failCurrent(UpstreamFailure kind, const std::string& detail) {
    if (dead_) {
        return;
    }
    if (ready_) {
        stream_.reset();
        events_.upstreamFailed(kind, current_ + ": " + detail);
        return;
    }
    // Before the session is established another host may still do.
    if (nextHost_ < config_.upstream.hosts.size()) {
        tryNextHost(current_, detail);
        return;
    }
    stream_.reset();
    events_.upstreamFailed(kind, current_ + ": " + detail);
}

void Upstream::wrapTls() {
    SslPtr ssl = makeUpstreamSsl(tls_, verifyName_, config_.upstream.verify);
    if (!ssl) {
        failCurrent(UpstreamFailure::Tls, "SSL_new: " + opensslErrors());
        return;
    }
    if (!stream_->startTls(std::move(ssl), false)) {
        failCurrent(UpstreamFailure::Tls, "cannot start TLS: " + opensslErrors());
    }
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
        if (reader_.buffered() > 0) {
            // Bytes after the 220 to STARTTLS are a response-injection attempt (CVE-2021-38371).
            failCurrent(UpstreamFailure::Protocol, "MSA sent data after its 220 to STARTTLS");
            return;
        }
        wrapTls();
    }
    if (action.ready) {
        ready_ = true;
        stream_->setIdleTimeout(0);  // from now on the session sets one per phase (setReplyTimeout)
        stream_->setLowWater(kLowWater);
        // The dialog (its copy of the capabilities, the XCLIENT line) and the identity (with
        // the customer's password for login = "replay") served only the setup and a failover
        // before it: an idle session keeps neither.  The caps live on in the session's engine.
        const EhloCaps caps = dialog_->caps();
        dialog_.reset();
        identity_.reset();
        events_.upstreamReady(caps);
    }
}

void Upstream::send(std::string_view bytes) {
    if (stream_) {
        stream_->write(bytes);
    }
}

void Upstream::setReplyTimeout(int seconds) {
    if (stream_ && ready_) {
        stream_->setIdleTimeout(seconds);
    }
}

std::string Upstream::tlsSummary() const {
    SSL* ssl = stream_ ? stream_->ssl() : nullptr;
    if (!ssl) {
        return "no TLS";
    }
    return std::string(SSL_get_version(ssl)) + (SSL_session_reused(ssl) ? " resumed" : "");
}

std::size_t Upstream::outputPending() const { return stream_ ? stream_->outputPending() : 0; }

void Upstream::streamData(std::string_view bytes) {
    if (dead_) {
        return;
    }
    reader_.append(bytes);
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
            const UpstreamDialog::Action action = dialog_->onReply(reply);
            apply(action);
            if (dead_ || action.failed || action.startTls || !stream_) {
                return;  // TLS begun or this host failed: nothing more to read here
            }
            continue;
        }
        events_.upstreamReply(reply);
        if (dead_ || !stream_) {
            return;  // the session dropped us
        }
    }
}

std::string Upstream::describeError(StreamEvent what) {
    if (what == StreamEvent::Timeout) {
        return "timeout";
    }
    std::string detail;
    if (const int err = stream_->socketError(); err && what != StreamEvent::Eof) {
        detail = evutil_socket_error_to_string(err);
    }
    for (unsigned long e : stream_->tlsErrors()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        detail += (detail.empty() ? "" : "; ") + std::string(buf);
    }
    if (what == StreamEvent::Eof && detail.empty()) {
        detail = "connection closed by the MSA";
    }
    return detail.empty() ? "connection error" : detail;
}

void Upstream::streamEvent(StreamEvent what) {
    if (dead_) {
        return;
    }
    if (what == StreamEvent::Connected) {
        connected_ = true;
        if (config_.upstream.proxyProtocol) {
            // Before anything else, TLS included (Postfix smtpd_upstream_proxy_protocol): the
            // MSA learns the customer's address from it instead of from XCLIENT.  Queued on
            // the wire ahead of the ClientHello.
            send(upstreamProxyHeader(identity_->client));
        }
        if (config_.upstream.tls == UpstreamTls::Implicit) {
            wrapTls();
        }
        return;
    }
    if (what == StreamEvent::TlsEstablished) {
        tlsUp_ = true;
        apply(dialog_->onTlsEstablished());
        return;
    }
    if (connected_ && !tlsUp_ && stream_->ssl()) {
        const long verify = SSL_get_verify_result(stream_->ssl());
        if (verify != X509_V_OK) {
            failCurrent(UpstreamFailure::Verify, std::string("MSA certificate not trusted for ") + verifyName_ + ": " +
                                                     X509_verify_cert_error_string(verify));
            return;
        }
        failCurrent(UpstreamFailure::Tls, "TLS handshake failed: " + describeError(what));
        return;
    }
    const UpstreamFailure kind = what == StreamEvent::Timeout ? UpstreamFailure::Timeout
                                 : ready_                     ? UpstreamFailure::Lost
                                                              : UpstreamFailure::Connect;
    failCurrent(kind, describeError(what));
}

void Upstream::streamWritten() {
    if (ready_ && !dead_) {
        events_.upstreamDrained();
    }
}

}  // namespace subproxy
