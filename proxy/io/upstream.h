// The MSA connection: connect (hosts in order, with a timeout, names resolved by evdns), TLS
// with verification, the handshake (UpstreamDialog), then a stream of replies for the session.
// TLS starts on the same Stream (STARTTLS or implicit); the dialog never sees SSL*.
#pragma once
#include <event2/dns.h>

#include <memory>
#include <optional>
#include <string>

#include "io/event_handles.h"
#include "io/stream.h"
#include "engine/client_protocol.h"
#include "wire/line_reader.h"
#include "wire/smtp_reply.h"
#include "io/tls.h"
#include "engine/upstream_protocol.h"

namespace subproxy {

class UpstreamEvents {
public:
    virtual ~UpstreamEvents() = default;
    virtual void upstreamReady(const EhloCaps& caps) = 0;
    virtual void upstreamReply(const Reply& reply) = 0;
    virtual void upstreamFailed(UpstreamFailure kind, const std::string& detail) = 0;
    virtual void upstreamDrained() = 0;  // output fell below the low watermark
    // `failed` ("host:port") could not be used for `why`, before the session was established;
    // the next upstream.host, `next`, is tried now.  Sessions log it; the capability probe,
    // which logs its own outcome, need not.
    virtual void upstreamFailover(const std::string& failed, const std::string& why, const std::string& next) {
        (void)failed;
        (void)why;
        (void)next;
    }
};

class Upstream : private StreamEvents {
public:
    Upstream(event_base* base, evdns_base* dns, SSL_CTX* tls, const Config& config, UpstreamIdentity identity,
             bool sendLogin, UpstreamEvents& events,
             UpstreamDialog::Purpose purpose = UpstreamDialog::Purpose::Session);
    ~Upstream() override;
    Upstream(const Upstream&) = delete;
    Upstream& operator=(const Upstream&) = delete;

    void start();
    // Drops the connection at once and makes every later callback a no-op.  The object itself
    // must outlive the call stack that got here (the session retires it, then frees it).
    void shutdown();
    void send(std::string_view bytes);
    void setReplyTimeout(int seconds);
    std::size_t outputPending() const;
    const std::string& peerName() const { return current_; }
    // "TLSv1.3 resumed", "TLSv1.3", or "no TLS": for the log line that opens the relay.
    std::string tlsSummary() const;

    static constexpr std::size_t kHighWater = 1 << 20;  // pause the customer above this
    static constexpr std::size_t kLowWater = 256 << 10;

private:
    // `failed`/`why`: the host just given up on and the reason (empty at the first try).
    void tryNextHost(std::string failed, const std::string& why);  // by value: often current_ itself
    void failCurrent(UpstreamFailure kind, const std::string& detail);
    void wrapTls();
    void apply(const UpstreamDialog::Action& action);
    std::string describeError(StreamEvent what);
    void stopResolving();
    // Name resolution (evdns; a numeric address answers at once) and its deadline; failures
    // found inside our own call are told from the loop (deferred_), never re-entrantly.
    static void resolvedCb(int result, evutil_addrinfo* addresses, void* self);
    static void deferredCb(evutil_socket_t, short, void* self);
    void failLater(UpstreamFailure kind, std::string detail, int seconds);
    // StreamEvents
    void streamData(std::string_view bytes) override;
    void streamWritten() override;
    void streamEvent(StreamEvent what) override;

    event_base* base_;
    evdns_base* dns_;
    SSL_CTX* tls_;
    const Config& config_;
    // Both only until the MSA session is ready (then freed: ~650 bytes of an idle session).
    std::unique_ptr<UpstreamIdentity> identity_;
    bool sendLogin_;
    UpstreamEvents& events_;
    UpstreamDialog::Purpose purpose_;

    std::size_t nextHost_ = 0;
    std::string current_;  // "host:port" being tried, for logs
    std::string verifyName_;
    std::unique_ptr<Stream> stream_;
    evdns_getaddrinfo_request* resolving_ = nullptr;
    EventPtr deferred_;
    UpstreamFailure deferredKind_ = UpstreamFailure::Connect;
    std::string deferredDetail_;
    bool tlsUp_ = false;
    bool ready_ = false;
    bool connected_ = false;
    bool dead_ = false;
    std::unique_ptr<UpstreamDialog> dialog_;
    LineReader reader_{4096};
    ReplyParser parser_;
};

}  // namespace subproxy
