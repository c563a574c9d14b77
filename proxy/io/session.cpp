#include "io/session.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "os/log.h"
#include "io/server.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

// Unprocessed customer input we hold while waiting (for SASL, the MSA, a DATA reply).
constexpr std::size_t kMaxBufferedInput = 64 * 1024;
constexpr std::size_t kMaxUnreadReplies = 64 * 1024;
constexpr int kCloseLingerSeconds = 10;  // to flush the last reply to a stuck client

std::string bracket(const std::string& address, int port) {
    return "[" + address + "]:" + std::to_string(port);
}

}  // namespace

Session::Session(Server& server, std::uint64_t id, std::shared_ptr<const Runtime> runtime, evutil_socket_t fd,
                 ClientEndpoint endpoint, std::string listenerName)
    : server_(server),
      id_(id),
      runtime_(std::move(runtime)),
      endpoint_(endpoint),
      prefix_(bracket(endpoint.address, endpoint.port) + ": "),
      listenerName_(std::move(listenerName)),
      stream_(std::make_unique<Stream>(server.base(), fd, static_cast<StreamEvents&>(*this))),
      protocol_(runtime_->config, std::move(endpoint), *this),
      started_(std::chrono::steady_clock::now()) {}

Session::~Session() = default;

void Session::start(bool stress) {
    logInfo("connect to " + bracket(endpoint_.destAddress, endpoint_.destPort) + " via " + listenerName_ +
            (endpoint_.via.empty() ? "" : " (" + endpoint_.via + ")") +
            (stress ? " (under stress: shorter timeouts until AUTH)" : ""));
    const Limits& limits = runtime_->config.limits;
    protocol_.setStress(stress);
    // One bound on the whole pre-AUTH phase: a byte every few seconds resets every idle timer,
    // but not this one (slowloris; issue 8).
    preAuthSeconds_ = stress ? std::min(limits.stressPreAuthTimeout, limits.preAuthTimeout) : limits.preAuthTimeout;
    startTimer(preAuthTimer_, server_.base(), &Session::preAuthCb, this, timeval{preAuthSeconds_, 0});
    lookUpClientName();
    beginGreeting();  // session_trap.cpp: greet wait, DNSBL, fan-out, then protocol_.start()
}

void Session::authenticated() {
    // Neither runs again (a second AUTH is refused by the engine); an idle session keeps
    // neither.  Never called from their own callbacks.
    preAuthTimer_.reset();
    authTimer_.reset();
    server_.sessionAuthenticated(id_);
}

bool Session::sheddable() const {
    return !closing_ && !protocol_.authenticated() && !checkingPassword() &&
           protocol_.state() != ClientProtocol::State::Closed;
}

bool Session::checkingPassword() const {
    // The password backend (or, for backend "upstream" and after a good password, the MSA) is
    // at work: bounded by auth.timeout and upstream.connect_timeout, and not the customer's doing.
    return protocol_.state() == ClientProtocol::State::AuthBackend ||
           protocol_.state() == ClientProtocol::State::UpstreamOpening;
}

void Session::preAuthCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    if (session->closing_) {
        return;
    }
    if (session->checkingPassword()) {
        const timeval again{5, 0};  // its own timeouts end that phase; look again then
        evtimer_add(session->preAuthTimer_.get(), &again);
        return;
    }
    session->releaseHeldFailure();  // a held 535 is logged (fail2ban) before the 421
    session->protocol_.onPreAuthDeadline(session->preAuthSeconds_);
}

std::string Session::who() const { return prefix_.substr(0, prefix_.size() - 2); }
void Session::logInfo(const std::string& line) { subproxy::logInfo(prefix_ + line); }
void Session::logWarning(const std::string& line) { subproxy::logWarning(prefix_ + line); }
Metrics* Session::metrics() { return &server_.metrics(); }
const EhloCaps* Session::knownMsaCaps() {
    msaCaps_ = server_.msaCaps().known();  // held: another loop's probe may replace it meanwhile
    return msaCaps_.get();
}
void Session::messageAccepted(const std::string& user) {
    const SSL* ssl = stream_ ? stream_->ssl() : nullptr;
    // destPort: the port the customer dialled (25, 465) before the firewall redirected it.
    server_.migration().record({user, endpoint_.address, endpoint_.destPort, protocol_.authMechanism(),
                                ssl ? negotiatedVersion(ssl) : std::string()},
                               static_cast<std::int64_t>(std::time(nullptr)));
}

// --------------------------------------------------------------------------------------------
// Customer side

void Session::sendToClient(std::string_view bytes) {
    if (stream_ && !stutter(bytes)) {
        stream_->write(bytes);
    }
}

void Session::streamData(std::string_view bytes) {
    retired_.clear();  // safe here: no upstream callback is on the stack
    if (closing_) {
        return;
    }
    if (greeting_) {
        earlyInput(bytes);  // before the full greeting: the pregreet test
        return;
    }
    protocol_.onClientData(bytes);
    updateReading();
}

void Session::updateReading() {
    if (!stream_ || closing_) {
        return;
    }
    // Bounded per session: unprocessed input, replies the client does not read (a NOOP flood
    // without reading), body bytes the MSA has not taken yet, and talk before the greeting.
    const bool pause = protocol_.bufferedInput() > kMaxBufferedInput || stream_->outputPending() > kMaxUnreadReplies ||
                       (upstream_ && upstream_->outputPending() > Upstream::kHighWater) ||
                       !stutterQueue_.empty() ||  // tarpitted: nothing more until the reply is out
                       (greeting_ && early_.size() >= kMaxEarlyInput);
    stream_->setReading(!pause);
}

void Session::setClientTimeout(int seconds) {
    clientTimeout_ = seconds;
    if (stream_ && !closing_) {
        stream_->setIdleTimeout(seconds);
    }
}

void Session::startTls() {
    flushStutter();  // the 220 must be on the wire before the handshake bytes
    // A ClientHello that came before any greeting (serveImplicitTls) goes to the handshake.
    if (!stream_->startTls(SslPtr(SSL_new(runtime_->serverTls.get())), true, early_)) {
        logWarning("cannot start TLS: " + opensslErrors());
        closeClient("TLS setup failed");
        return;
    }
    std::string().swap(early_);
}

void Session::closeClient(const std::string& reason) {
    if (closing_) {
        return;
    }
    closing_ = true;
    closeReason_ = reason;
    authCancel();
    if (upstream_ || waitingUpstream_) {
        upstreamAbort();
    }
    if (!stream_) {
        scheduleDestroy();
        return;
    }
    stream_->setReading(false);
    if (stutterQueue_.empty()) {
        stream_->closeTls();  // the last reply and close_notify in one send
    }
    if (stream_->outputPending() == 0 && stutterQueue_.empty()) {
        scheduleDestroy();
        return;
    }
    stream_->setDeadline(kCloseLingerSeconds);
}

void Session::streamWritten() {
    if (closing_) {
        if (stutterQueue_.empty() && stream_->outputPending() == 0) {
            scheduleDestroy();  // the last reply is out
        }
        return;
    }
    updateReading();  // the client caught up with its replies
}

void Session::streamEvent(StreamEvent what) {
    if (closing_) {
        scheduleDestroy();
        return;
    }
    switch (what) {
    case StreamEvent::TlsEstablished:
        forgetClientHello(stream_->ssl());
        protocol_.onTlsEstablished();
        updateReading();
        return;
    case StreamEvent::Timeout:
        protocol_.onClientTimeout();
        return;
    case StreamEvent::Connected:  // outgoing connections only
        return;
    case StreamEvent::Eof:
    case StreamEvent::Error:
        clientGone(what);
        return;
    }
}

void Session::clientGone(StreamEvent what) {
    std::string why = what == StreamEvent::Eof ? "client disconnected" : "client connection error";
    if (SSL* ssl = stream_->ssl(); ssl && !stream_->tlsEstablished()) {
        // One line with what the client offered (the help desk's answer to "my old mail
        // program cannot connect"); the disconnect line keeps the short reason.
        const HandshakeFailure failure = describeHandshakeFailure(
            ssl, stream_->tlsErrors(), what == StreamEvent::Eof ? "client disconnected" : "connection error");
        why = "TLS handshake failed: " + failure.reason;
        logInfo(why + " (" + failure.offered + ")");
    }
    releaseHeldFailure();  // its "authentication failed" line must be logged (fail2ban)
    protocol_.onClientGone(why);
}

void Session::scheduleDestroy() {
    startTimer(destroy_, server_.base(), &Session::destroyCb, this, timeval{0, 0});
}

void Session::logDisconnect() {
    const auto& c = protocol_.counters();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f", seconds);
    logInfo("disconnect duration=" + std::string(duration) + "s commands=" + std::to_string(c.commands) +
            " errors=" + std::to_string(c.errors) + " auth_failures=" + std::to_string(c.authFailures) +
            " messages=" + std::to_string(c.messages) + " rejected=" + std::to_string(c.rejected) +
            (protocol_.authenticated() ? " sasl_username=" + printable(protocol_.user()) : std::string()) +
            " reason=" + closeReason_);
}

void Session::destroyCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    session->logDisconnect();
    // Pipelined leftovers are dropped with the connection; nothing more is read.
    session->stream_.reset();
    session->server_.sessionClosed(session->id_);  // deletes the session
}

}  // namespace subproxy
