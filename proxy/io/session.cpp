#include "io/session.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <vector>

#include "wire/identity.h"
#include "os/log.h"
#include "sasl_server.h"
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

std::string saslAddress(const std::string& address, int port) {
    return address + ";" + std::to_string(port);  // Cyrus wants "a.b.c.d;port", no brackets
}

}  // namespace

struct Session::AuthJob {
    std::unique_ptr<sasl::Attempt> attempt;  // touched by one thread at a time
    // Set on the loop when the session stops waiting (timeout, cancel, close): a job still
    // queued then is skipped instead of spending the backend's time on nobody.
    std::atomic<bool> abandoned{false};
};

Session::Session(Server& server, std::uint64_t id, std::shared_ptr<const Runtime> runtime, evutil_socket_t fd,
                 ClientEndpoint endpoint, std::string listenerName)
    : server_(server),
      id_(id),
      runtime_(std::move(runtime)),
      endpoint_(endpoint),
      prefix_(bracket(endpoint.address, endpoint.port) + ": "),
      listenerName_(std::move(listenerName)),
      bev_(bufferevent_socket_new(server.base(), fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)),
      protocol_(runtime_->config, std::move(endpoint), *this),
      started_(std::chrono::steady_clock::now()) {
    authTimer_ = evtimer_new(server.base(), &Session::authTimeoutCb, this);
    penaltyTimer_ = evtimer_new(server.base(), &Session::penaltyCb, this);
    destroy_ = evtimer_new(server.base(), &Session::destroyCb, this);
}

Session::~Session() {
    event_free(authTimer_);
    event_free(penaltyTimer_);
    event_free(destroy_);
}

void Session::start(bool stress) {
    logInfo("connect to " + bracket(endpoint_.destAddress, endpoint_.destPort) + " via " + listenerName_ +
            (endpoint_.via.empty() ? "" : " (" + endpoint_.via + ")") + (stress ? " (under stress: shorter timeouts until AUTH)" : ""));
    const Limits& limits = runtime_->config.limits;
    protocol_.setStress(stress);
    // One bound on the whole pre-AUTH phase: a byte every few seconds resets every idle timer,
    // but not this one (slowloris; issue 8).
    preAuthSeconds_ = stress ? std::min(limits.stressPreAuthTimeout, limits.preAuthTimeout) : limits.preAuthTimeout;
    preAuthTimer_.reset(evtimer_new(server_.base(), &Session::preAuthCb, this));
    const timeval deadline{preAuthSeconds_, 0};
    evtimer_add(preAuthTimer_.get(), &deadline);
    bufferevent_setcb(bev_.get(), &Session::readCb, &Session::writeCb, &Session::eventCb, this);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    lookUpClientName();
    beginGreeting();  // session_trap.cpp: greet wait, DNSBL, fan-out, then protocol_.start()
}

void Session::authenticated() {
    if (preAuthTimer_) {
        evtimer_del(preAuthTimer_.get());
    }
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

void Session::logInfo(const std::string& line) { subproxy::logInfo(prefix_ + line); }
void Session::logWarning(const std::string& line) { subproxy::logWarning(prefix_ + line); }
Metrics* Session::metrics() { return &server_.metrics(); }
const EhloCaps* Session::knownMsaCaps() {
    msaCaps_ = server_.msaCaps().known();  // held: another loop's probe may replace it meanwhile
    return msaCaps_.get();
}
void Session::messageAccepted(const std::string& user) {
    const SSL* ssl = bev_ ? bufferevent_openssl_get_ssl(bev_.get()) : nullptr;
    // destPort: the port the customer dialled (25, 465) before the firewall redirected it.
    server_.migration().record({user, endpoint_.address, endpoint_.destPort, protocol_.authMechanism(),
                                ssl ? negotiatedVersion(ssl) : std::string()},
                               static_cast<std::int64_t>(std::time(nullptr)));
}

// --------------------------------------------------------------------------------------------
// Customer side

void Session::sendToClient(std::string_view bytes) {
    if (bev_ && !stutter(bytes)) {
        bufferevent_write(bev_.get(), bytes.data(), bytes.size());
    }
}

void Session::onRead() {
    retired_.clear();  // safe here: no upstream callback is on the stack
    evbuffer* in = bufferevent_get_input(bev_.get());
    const std::size_t n = evbuffer_get_length(in);
    if (n == 0 || closing_) {
        evbuffer_drain(in, n);
        return;
    }
    std::string chunk(n, '\0');
    evbuffer_remove(in, chunk.data(), n);
    if (greeting_) {
        earlyInput(chunk);  // before the full greeting: the pregreet test
        return;
    }
    protocol_.onClientData(chunk);
    updateReading();
}

void Session::updateReading() {
    if (!bev_ || closing_) {
        return;
    }
    // Bounded per session: unprocessed input, replies the client does not read (a NOOP flood
    // without reading), and body bytes the MSA has not taken yet.
    const bool pause = protocol_.bufferedInput() > kMaxBufferedInput ||
                       evbuffer_get_length(bufferevent_get_output(bev_.get())) > kMaxUnreadReplies ||
                       (upstream_ && upstream_->outputPending() > Upstream::kHighWater) ||
                       !stutterQueue_.empty();  // tarpitted: nothing more until the reply is out
    if (pause != readPaused_) {
        readPaused_ = pause;
        pause ? bufferevent_disable(bev_.get(), EV_READ) : bufferevent_enable(bev_.get(), EV_READ);
    }
}

void Session::setClientTimeout(int seconds) {
    clientTimeout_ = seconds;
    if (bev_ && !closing_) {
        setReadTimeout(bev_.get(), seconds);
    }
}

void Session::startTls() {
    flushStutter();  // the 220 must be on the wire before the handshake bytes
    SslPtr ssl(SSL_new(runtime_->serverTls.get()));
    bufferevent* plain = bev_.release();
    // The filter reports the socket's timeouts as its own: the idle timer set on the plain
    // connection (tls_handshake_timeout by now) must not keep running under TLS (issue 7).
    clearTimeouts(plain);
    bufferevent* filter = ssl ? bufferevent_openssl_filter_new(server_.base(), plain, ssl.get(),
                                                               BUFFEREVENT_SSL_ACCEPTING,
                                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
                              : nullptr;
    if (!filter) {
        if (ssl) {
            ssl.release();  // freed by libevent when the filter constructor fails (libevent#1774)
        }
        bev_.reset(plain);
        logWarning("cannot start TLS: " + opensslErrors());
        closeClient("TLS setup failed");
        return;
    }
    ssl.release();
    bev_.reset(filter);
    bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
    bufferevent_setcb(filter, &Session::readCb, &Session::writeCb, &Session::eventCb, this);
    bufferevent_enable(filter, EV_READ | EV_WRITE);
    setClientTimeout(clientTimeout_);
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
    if (!bev_) {
        scheduleDestroy();
        return;
    }
    bufferevent_disable(bev_.get(), EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0 && stutterQueue_.empty()) {
        scheduleDestroy();
        return;
    }
    const timeval linger{kCloseLingerSeconds, 0};
    bufferevent_set_timeouts(bev_.get(), nullptr, &linger);
}

void Session::onWritten() {
    if (closing_) {
        if (stutterQueue_.empty()) {
            scheduleDestroy();  // the write callback fires once the output is empty
        }
        return;
    }
    updateReading();  // the client caught up with its replies
}

void Session::onEvent(short what) {
    if (closing_) {
        scheduleDestroy();
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        protocol_.onTlsEstablished();
        updateReading();
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        protocol_.onClientTimeout();
        return;
    }
    std::string why = (what & BEV_EVENT_EOF) ? "client disconnected" : "client connection error";
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev_.get())) {
        if (!SSL_is_init_finished(ssl)) {
            std::vector<unsigned long> errors;
            while (unsigned long e = bufferevent_get_openssl_error(bev_.get())) {
                errors.push_back(e);
            }
            // One line with what the client offered (the help desk's answer to "my old mail
            // program cannot connect"); the disconnect line keeps the short reason.
            const HandshakeFailure failure = describeHandshakeFailure(
                ssl, errors, (what & BEV_EVENT_EOF) ? "client disconnected" : "connection error");
            why = "TLS handshake failed: " + failure.reason;
            logInfo(why + " (" + failure.offered + ")");
        }
    }
    releaseHeldFailure();  // its "authentication failed" line must be logged (fail2ban)
    protocol_.onClientGone(why);
}

void Session::scheduleDestroy() {
    const timeval now{0, 0};
    evtimer_add(destroy_, &now);
}

void Session::destroyCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    const auto& c = session->protocol_.counters();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - session->started_).count();
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f", seconds);
    session->logInfo("disconnect duration=" + std::string(duration) + "s commands=" + std::to_string(c.commands) +
                     " errors=" + std::to_string(c.errors) + " auth_failures=" + std::to_string(c.authFailures) +
                     " messages=" + std::to_string(c.messages) + " rejected=" + std::to_string(c.rejected) +
                     (session->protocol_.authenticated() ? " sasl_username=" + printable(session->protocol_.user())
                                                         : std::string()) +
                     " reason=" + session->closeReason_);
    if (session->bev_) {
        // Pipelined leftovers are dropped with the connection; nothing more is read.
        session->bev_.reset();
    }
    session->server_.sessionClosed(session->id_);  // deletes the session
}

void Session::readCb(bufferevent*, void* self) { static_cast<Session*>(self)->onRead(); }
void Session::writeCb(bufferevent*, void* self) { static_cast<Session*>(self)->onWritten(); }
void Session::eventCb(bufferevent*, short what, void* self) { static_cast<Session*>(self)->onEvent(what); }

// --------------------------------------------------------------------------------------------
// SASL on the worker threads

void Session::authStart(const std::string& mechanism, const std::optional<std::string>& initial) {
    abandonAuthJob();
    auth_ = std::make_shared<AuthJob>();  // a fresh sasl_conn_t for every AUTH command
    ++authGeneration_;
    runAuth([=](sasl::Attempt& attempt) { return attempt.start(mechanism, initial); });
}

void Session::authStep(const std::string& response) {
    runAuth([response](sasl::Attempt& attempt) { return attempt.step(response); });
}

void Session::runAuth(std::function<AuthResult(sasl::Attempt&)> step) {
    // One deadline for the customer and the queue: the timer answers 454 at auth.timeout, and
    // a job still queued by then is dropped by the workers without running.
    authAsked_ = std::chrono::steady_clock::now();
    const timeval timeout{runtime_->config.auth.timeout, 0};
    evtimer_add(authTimer_, &timeout);
    const auto deadline = authAsked_ + std::chrono::seconds(runtime_->config.auth.timeout);
    auto job = auth_;
    auto result = std::make_shared<AuthResult>();
    const Config& config = runtime_->config;
    const std::string hostname = config.hostname;
    const std::string realm = config.auth.saslRealm;
    const std::string local = saslAddress(endpoint_.destAddress, endpoint_.destPort);
    const std::string remote = saslAddress(endpoint_.address, endpoint_.port);
    const std::string prefix = prefix_;
    const std::uint64_t generation = authGeneration_;
    Server& server = server_;
    const std::uint64_t id = id_;
    server_.authWorkers().submit(
        [job, result, step, hostname, realm, local, remote, prefix] {
            if (job->abandoned) {
                return;  // nobody waits for it; the completion is ignored as well
            }
            if (!job->attempt) {
                job->attempt = std::make_unique<sasl::Attempt>(hostname, realm, local, remote, prefix);
            }
            *result = step(*job->attempt);
        },
        [&server, id, generation, result] {
            if (Session* session = server.findSession(id)) {
                session->authFinished(generation, *result);
            }
        },
        deadline);
}

void Session::authFinished(std::uint64_t generation, const AuthResult& result) {
    if (generation != authGeneration_ || closing_) {
        return;  // cancelled, timed out or closed meanwhile
    }
    evtimer_del(authTimer_);
    if (result.status != AuthResult::Status::More) {
        auth_.reset();
    }
    if (result.status == AuthResult::Status::Fail && holdAuthFailure(authAsked_)) {
        heldAuth_ = result;  // the engine stays in AuthBackend: input waits, no reply yet
        return;
    }
    if (result.status == AuthResult::Status::Done) {
        server_.guard().authSucceeded(userKey(result.username, defaultRealm(runtime_->config)));
    }
    if (result.status == AuthResult::Status::Temp) {
        // The customer's password was never judged: 454, and nothing for the guard to count.
        passwordBackendProblem("error", result);
        return;
    }
    protocol_.onAuthResult(result);
    updateReading();
}

void Session::passwordBackendProblem(const char* kind, AuthResult result) {
    server_.metrics().authBackendError(kind);
    result.status = AuthResult::Status::Temp;
    result.reason = "password backend problem: " + result.reason;
    protocol_.onAuthResult(result);
    updateReading();
}

bool Session::holdAuthFailure(std::chrono::steady_clock::time_point asked) {
    // Unknown user, wrong password, any mechanism: the same count and the same delay.  The
    // delay runs from the moment the password arrived, so the backend's own time (a lookup
    // that finds no user may be quicker) is hidden inside it.
    // Per-user counts key on the account, not on its spelling (identity.h): a guesser cannot
    // reset them by trying "ALICE", " alice" or "alice@<realm>".
    double delay = server_.guard().authFailed(endpoint_.ip, bracket(endpoint_.address, endpoint_.port),
                                              userKey(protocol_.user(), defaultRealm(runtime_->config)));
    if (delay <= 0) {
        return false;
    }
    delay -= std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    if (delay <= 0) {
        delay = 0;  // still from the timer: never re-entrantly from a worker's completion
    }
    const auto micros = static_cast<long long>(delay * 1e6);
    const timeval wait{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    evtimer_add(penaltyTimer_, &wait);
    penaltyFrom_ = std::chrono::steady_clock::now();
    return true;
}

void Session::penaltyCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    if (session->closing_) {
        return;
    }
    session->releaseHeldFailure();
    session->updateReading();
}

void Session::releaseHeldFailure() {
    evtimer_del(penaltyTimer_);
    if (heldAuth_) {
        const AuthResult result = *heldAuth_;
        heldAuth_.reset();
        protocol_.onAuthResult(result);
    } else if (heldReply_) {
        const Reply reply = *heldReply_;
        heldReply_.reset();
        protocol_.onUpstreamReply(reply);
    }
}

void Session::authTimeoutCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    const AuthWorkers::Load load = session->server_.authWorkers().load();
    ++session->authGeneration_;  // a late answer from the worker is ignored
    session->abandonAuthJob();
    session->passwordBackendProblem(
        "timeout", AuthResult{AuthResult::Status::Temp, {}, {},
                              "no answer within auth.timeout (" + std::to_string(session->runtime_->config.auth.timeout) +
                                  "s; " + std::to_string(load.busy) + " of " + std::to_string(load.threads) +
                                  " workers busy, " + std::to_string(load.queued) + " checks queued)"});
}

void Session::abandonAuthJob() {
    if (auth_) {
        auth_->abandoned = true;
        auth_.reset();
    }
}

void Session::authCancel() {
    ++authGeneration_;
    abandonAuthJob();
    evtimer_del(authTimer_);
    evtimer_del(penaltyTimer_);
    heldAuth_.reset();
    heldReply_.reset();
    penaltyFrom_.reset();
}

// --------------------------------------------------------------------------------------------
// MSA side

void Session::upstreamOpen(const UpstreamIdentity& identity) {
    awaitedReplies_.clear();  // a new MSA session answers none of the old one's commands
    if (upstream_ || waitingUpstream_) {
        upstreamAbort();
    }
    if (namePending_) {
        waitingUpstream_ = identity;  // opened by clientNameKnown(), within client_name.timeout_ms
        return;
    }
    openUpstream(identity);
}

void Session::openUpstream(UpstreamIdentity identity) {
    identity.client.name = clientName_;
    const Config& config = runtime_->config;
    upstream_ = std::make_unique<Upstream>(server_.base(), server_.dns(), runtime_->clientTls.get(), config,
                                           identity, config.auth.backend == AuthBackend::Sasl, *this);
    upstream_->start();
}

void Session::lookUpClientName() {
    const ClientNameConfig& config = runtime_->config.clientName;
    if (!config.lookup) {
        return;
    }
    namePending_ = true;
    nameLookup_ = server_.clientNames().lookup(endpoint_.ip, config.timeoutMs,
                                               [this](const ClientName& name) { clientNameKnown(name); });
}

void Session::clientNameKnown(const ClientName& name) {
    namePending_ = false;  // nameLookup_ stays: it is still on the stack
    clientName_ = name.status == ClientName::Status::Confirmed ? name.name : name.xclientValue();
    if (name.status == ClientName::Status::Confirmed) {
        logInfo("client name " + name.name + " (forward-confirmed)");
    } else {
        logInfo("client name unknown " + name.xclientValue() + ": " + name.detail);
    }
    if (waitingUpstream_ && !closing_) {
        UpstreamIdentity identity = std::move(*waitingUpstream_);
        waitingUpstream_.reset();
        openUpstream(std::move(identity));
    }
}

void Session::upstreamSend(std::string_view bytes) {
    if (upstream_) {
        upstream_->send(bytes);
        updateReading();
    }
}

void Session::upstreamAbort() {
    waitingUpstream_.reset();
    if (upstream_) {
        upstream_->shutdown();
        retired_.push_back(std::move(upstream_));
    }
}

void Session::setUpstreamTimeout(int seconds) {
    if (upstream_) {
        upstream_->setReplyTimeout(seconds);
    }
}

void Session::upstreamReady(const EhloCaps& caps) {
    logInfo("MSA session ready: " + upstream_->peerName() + " (" + upstream_->tlsSummary() + ")");
    server_.msaCaps().learned(caps, upstream_->peerName());
    protocol_.onUpstreamReady(caps);
    updateReading();
}

void Session::upstreamReply(const Reply& reply) {
    timeUpstreamReply();
    if (protocol_.state() == ClientProtocol::State::AuthBackend &&
        runtime_->config.auth.backend == AuthBackend::Upstream) {
        // Backend "upstream": the MSA judged the password; its 535 is held like ours.
        if (reply.code == 535 && holdAuthFailure(std::chrono::steady_clock::now())) {
            heldReply_ = reply;
            return;
        }
        if (reply.code == 235) {
            server_.guard().authSucceeded(userKey(protocol_.user(), defaultRealm(runtime_->config)));
        }
    }
    protocol_.onUpstreamReply(reply);
    updateReading();
}

void Session::upstreamFailed(UpstreamFailure kind, const std::string& detail) {
    upstreamAbort();
    protocol_.onUpstreamFailed(kind, detail);
    updateReading();
}

void Session::upstreamDrained() { updateReading(); }

void Session::upstreamFailover(const std::string& failed, const std::string& why, const std::string& next) {
    ++server_.metrics().upstreamFailovers;
    logWarning("MSA failover: " + failed + " failed: " + printable(why, 200) + "; trying the next upstream.host, " +
               next);
}

}  // namespace subproxy
