// Session, the spambot-trap half (issue 3, items 2 and 3): the greeting gate (a postscreen-style
// "220-" teaser held for trap.greet_wait while the DNSBL lookups run), the pregreet and
// fan-out signals, the DNSBL verdict, the actions (log, tarpit, reject, ban) and the tarpit's
// stuttered output.  The engine (client_commands.cpp) raises the in-session signals through
// trapSignal().  Nothing here blocks: the waits are timers.
#include <algorithm>

#include "defence/access_list.h"
#include "wire/cidr.h"
#include "os/log.h"
#include "io/server.h"
#include "io/session.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

const char* refusalText(TrapSignal signal) {
    switch (signal) {
    case TrapSignal::Pregreet:
        return "protocol error: talked before the greeting";
    case TrapSignal::FanOut:
        return "too many destinations from this address";
    case TrapSignal::NonSmtp:
        return "this is an SMTP server";
    default:
        return "connection refused";
    }
}

}  // namespace

TrapAction Session::trapSignal(TrapSignal signal, const std::string& detail) {
    const unsigned bit = 1u << static_cast<unsigned>(signal);
    if (trapExempt_ || (trapFired_ & bit) != 0 || closing_) {
        return TrapAction::Ignore;  // each signal is acted on once per session
    }
    trapFired_ |= bit;
    const TrapConfig& trap = runtime_->config.trap;
    TrapAction action = trap.action(signal);
    if (action == TrapAction::Ignore) {
        return action;
    }
    if (action == TrapAction::Tarpit && !tarpit_) {
        tarpit_ = server_.defence().acquireTarpit(trap.tarpitMax);
    }
    action = effectiveTrapAction(action, tarpit_ != nullptr);
    logWarning(formatTrapLine(signal, action, endpoint_.destAddress, endpoint_.destPort, protocol_.helo(), detail));
    server_.metrics().trapDetected(signal);
    if (action == TrapAction::Ban) {
        server_.guard().trapBan(endpoint_.ip, who(),
                                std::string("trap signal ") + trapSignalName(signal));
    }
    return action;
}

bool Session::refuseByTrap(TrapSignal signal, const std::string& detail) {
    const TrapAction action = trapSignal(signal, detail);
    if (action != TrapAction::Reject && action != TrapAction::Ban) {
        return false;
    }
    sendToClient("554 5.7.1 " + runtime_->config.hostname + " Error: " + refusalText(signal) + "\r\n");
    closeClient(std::string("trap: ") + trapSignalName(signal));
    return true;
}

// ---------------------------------------------------------------------------------------------
// The greeting gate

void Session::beginGreeting() {
    const Config& config = runtime_->config;
    const IpAddress& ip = endpoint_.ip;
    if (checkAccess(config.access, ip) == AccessVerdict::Allow) {
        trapExempt_ = true;
        logInfo("access: allowed by access.allow; trap and DNSBL skipped");
    } else {
        Defence& defence = server_.defence();
        // Counted per client key (IPv6 per guard.ipv6_prefix, like bans): a bot on one IPv6
        // customer line can rotate through its whole /64.
        const std::string client = clientKey(ip, config.guard.policy.ipv6Prefix);
        const int dialled = defence.recordFanOut(client, endpoint_.destAddress);
        if (dialled > config.trap.fanoutLimit &&
            refuseByTrap(TrapSignal::FanOut, "more than " + std::to_string(config.trap.fanoutLimit) +
                                                 " distinct dialled addresses within " +
                                                 std::to_string(config.trap.fanoutWindow) + "s")) {
            return;
        }
        if (!config.dnsbl.zones.empty()) {
            dnsblDone_ = false;
            dnsbl_ = server_.dnsbl().lookup(
                config.dnsbl, ip, [this](const DnsblVerdict& verdict, const std::vector<ZoneResult>& results) {
                    dnsblVerdict(verdict, results);
                });
        }
    }
    if (endpoint_.implicitTls) {
        // TLS from byte one: the handshake bytes must reach OpenSSL untouched, so there is no
        // gate; the verdict applies when it arrives (decision "mail" needs it only at MAIL).
        protocol_.start();
        return;
    }
    if (config.limits.tlsDetectMs > 0) {
        // A mail program set to "SSL" on port 25 sends its ClientHello at once and would read
        // any greeting as a broken TLS record: say nothing until the first bytes or the wait.
        tlsDetectOver_ = false;
        greeting_ = true;
        tlsDetectTimer_.reset(evtimer_new(server_.base(), &Session::tlsDetectCb, this));
        const timeval wait{config.limits.tlsDetectMs / 1000, (config.limits.tlsDetectMs % 1000) * 1000};
        evtimer_add(tlsDetectTimer_.get(), &wait);
        return;
    }
    startGreetWait();
    greeting_ = !greetWaitOver_ || !dnsblDone_;
    if (!greeting_) {
        protocol_.start();
    }
}

void Session::startGreetWait() {
    const Config& config = runtime_->config;
    if (!trapExempt_ && config.trap.greetWaitMs > 0 && !server_.defence().greetPassed(endpoint_.address)) {
        // postscreen's teaser: a real client waits for the last line of the greeting; a bot
        // that does not read talks now, and that is the pregreet signal.
        greetWaitOver_ = false;
        sendToClient("220-" + config.hostname + " ESMTP\r\n");
        greetTimer_.reset(evtimer_new(server_.base(), &Session::greetTimerCb, this));
        const timeval wait{config.trap.greetWaitMs / 1000, (config.trap.greetWaitMs % 1000) * 1000};
        evtimer_add(greetTimer_.get(), &wait);
    }
}

void Session::tlsDetectCb(evutil_socket_t, short, void* self) {
    static_cast<Session*>(self)->endTlsDetect();
}

void Session::endTlsDetect() {
    tlsDetectOver_ = true;
    tlsDetectTimer_.reset();
    if (closing_) {
        return;
    }
    startGreetWait();
    if (greetWaitOver_ && dnsblDone_) {
        finishGreeting();
    }
}

void Session::serveImplicitTls() {
    tlsDetectOver_ = true;
    tlsDetectTimer_.reset();
    greeting_ = false;
    // Not a trap signal: this is a customer with a misconfigured mail program, not a bot.
    logInfo("TLS ClientHello on a STARTTLS listener: serving implicit TLS");
    ++server_.metrics().implicitTlsDetections;
    // early_ holds the ClientHello: startTls hands it to the handshake.
    protocol_.startImplicitTls();  // starts TLS on the stream (startTls)
    updateReading();
}

void Session::greetTimerCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    session->greetWaitOver_ = true;
    if ((session->trapFired_ & (1u << static_cast<unsigned>(TrapSignal::Pregreet))) == 0 && !session->closing_) {
        session->server_.defence().rememberGreetPass(session->endpoint_.address,
                                                     session->runtime_->config.trap.greetCacheTtl);
    }
    if (session->dnsblDone_) {
        session->finishGreeting();
    }
}

void Session::earlyInput(std::string_view chunk) {
    std::string bytes(chunk);
    if (!tlsDetectOver_) {
        early_ += bytes;
        switch (classifyFirstBytes(early_)) {
        case FirstBytes::TlsHandshake:
            serveImplicitTls();
            return;
        case FirstBytes::Undecided:
            return;  // one byte of what may be a TLS record; the rest follows (or the wait ends)
        case FirstBytes::Other:
            break;
        }
        // Plain text before any greeting: greet now (or send the teaser), then treat these
        // bytes as if they had come after it.
        bytes.swap(early_);
        early_.clear();
        endTlsDetect();
        if (closing_) {
            return;
        }
        if (!greeting_) {
            protocol_.onClientData(bytes);
            updateReading();
            return;
        }
    }
    if (!greetWaitOver_) {
        // Talking first is pregreet, but a web client or a TLS scanner (HTTP and TLS clients
        // always talk first) is filed for what it is, as after the greeting: non_smtp.
        const std::string all = early_ + bytes;
        const std::string firstLine = all.substr(0, all.find_first_of("\r\n"));
        std::string nonSmtp = detectBinaryHello(all);
        if (nonSmtp.empty()) {
            const std::string http = detectHttpLine(firstLine);
            nonSmtp = http.empty() ? http : http + ": " + firstLine;
        }
        if (nonSmtp.empty() ? refuseByTrap(TrapSignal::Pregreet, bytes) : refuseByTrap(TrapSignal::NonSmtp, nonSmtp)) {
            return;
        }
    }
    early_.append(bytes, 0, std::min(bytes.size(), kMaxEarlyInput - std::min(early_.size(), kMaxEarlyInput)));
    updateReading();  // stops at kMaxEarlyInput; finishGreeting() resumes once the engine has the bytes
}

void Session::finishGreeting() {
    if (closing_ || !greeting_) {
        return;
    }
    greeting_ = false;
    protocol_.start();
    if (!early_.empty()) {
        std::string early;
        early.swap(early_);
        protocol_.onClientData(early);  // a client that was only early gets its answers now
    }
    updateReading();
}

void Session::dnsblVerdict(const DnsblVerdict& verdict, const std::vector<ZoneResult>& results) {
    dnsblDone_ = true;
    const DnsblConfig& dnsbl = runtime_->config.dnsbl;
    for (std::size_t i = 0; i < results.size() && i < dnsbl.zones.size(); ++i) {
        Metrics::DnsblCounts& counts = server_.metrics().dnsbl[dnsbl.zones[i].name];
        ++counts.queries;
        counts.hits += results[i].status == ZoneStatus::Listed ? 1 : 0;
        counts.errors += results[i].status == ZoneStatus::Error ? 1 : 0;
    }
    if (closing_) {
        return;
    }
    for (std::size_t i = 0; i < results.size() && i < dnsbl.zones.size(); ++i) {
        if (results[i].status == ZoneStatus::Error) {
            logWarning("dnsbl: zone " + dnsbl.zones[i].zone + ": " + results[i].detail);
        }
    }
    if (verdict.score != 0) {
        // postscreen: "DNSBL rank N for [addr]:port".
        logInfo("dnsbl: rank " + std::to_string(verdict.score) + " (threshold " + std::to_string(dnsbl.threshold) +
                ")" + (verdict.listed ? " listed" : verdict.allowlisted ? " allowlisted" : "") + ": " +
                verdict.summary);
    }
    if (verdict.allowlisted) {
        trapExempt_ = true;  // a DNSWL vouches for the client: the trap stays quiet
    }
    if (verdict.listed && dnsbl.decision == DnsblDecision::Connect) {
        trapSignal(TrapSignal::Dnsbl, verdict.summary);  // logged, and banned if so configured
        if (closing_) {
            return;
        }
        logWarning("dnsbl: connection refused at connect: " + verdict.summary);
        sendToClient("554 5.7.1 " + verdict.reply + "\r\n");
        closeClient("dnsbl");
        return;
    }
    protocol_.setDnsblVerdict(verdict);
    if (greeting_ && greetWaitOver_ && tlsDetectOver_) {
        finishGreeting();
    }
}

// ---------------------------------------------------------------------------------------------
// Tarpit: replies leave a few bytes per interval (OpenBSD spamd's stutter).  Reading pauses
// while a reply is queued, so a tarpitted bot costs its queue and one timer, nothing more.

bool Session::stutter(std::string_view bytes) {
    if (!tarpit_) {
        return false;
    }
    if (!stutterTimer_) {
        stutterTimer_.reset(evtimer_new(server_.base(), &Session::stutterCb, this));
        tarpitSince_ = std::chrono::steady_clock::now();
    }
    stutterQueue_.append(bytes.data(), bytes.size());
    if (!evtimer_pending(stutterTimer_.get(), nullptr)) {
        const int ms = runtime_->config.trap.tarpitIntervalMs;
        const timeval wait{ms / 1000, (ms % 1000) * 1000};
        evtimer_add(stutterTimer_.get(), &wait);
    }
    updateReading();
    return true;
}

void Session::flushStutter() {
    if (stream_ && !stutterQueue_.empty()) {
        stream_->write(stutterQueue_);
    }
    stutterQueue_.clear();
}

void Session::stutterCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    const TrapConfig& trap = session->runtime_->config.trap;
    if (!session->stream_) {
        return;
    }
    if (std::chrono::steady_clock::now() - session->tarpitSince_ > std::chrono::seconds(trap.tarpitMaxTime)) {
        // The cap on a tarpitted session's life: its place goes to the next bot.
        session->stutterQueue_.clear();
        if (!session->closing_) {
            session->logInfo("trap: tarpit time limit reached (trap.tarpit_max_time=" +
                             std::to_string(trap.tarpitMaxTime) + "s), closing");
            session->closeClient("tarpit time limit");
        } else if (session->stream_->outputPending() == 0) {
            session->scheduleDestroy();
        }
        return;
    }
    const std::size_t n = std::min(session->stutterQueue_.size(), static_cast<std::size_t>(trap.tarpitBytes));
    session->stream_->write(std::string_view(session->stutterQueue_).substr(0, n));
    session->stutterQueue_.erase(0, n);
    if (!session->stutterQueue_.empty()) {
        const timeval wait{trap.tarpitIntervalMs / 1000, (trap.tarpitIntervalMs % 1000) * 1000};
        evtimer_add(session->stutterTimer_.get(), &wait);
    } else if (!session->closing_) {
        session->updateReading();  // the reply is out: the next command may come
    }
    // When closing, the write callback destroys the session once the last byte is out.
}

}  // namespace subproxy
