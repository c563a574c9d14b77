// The customer-side SMTP engine.  See client_protocol.h.  Reply texts follow RFC 3207/4954/5321
// and Postfix where Postfix has a well-known wording (fail2ban and operators grep for them).
#include "engine/client_protocol.h"

#include <algorithm>
#include <cassert>

#include "wire/text_util.h"

namespace subproxy {

namespace {

bool legalTransition(ClientProtocol::State from, ClientProtocol::State to) {
    using S = ClientProtocol::State;
    if (to == S::Closed) {
        return from != S::Closed;
    }
    switch (from) {
    case S::Command:
        return to == S::Command || to == S::TlsHandshake || to == S::AuthBackend ||
               to == S::UpstreamOpening || to == S::DataBody;
    case S::TlsHandshake:
        return to == S::Command;
    case S::AuthBackend:
        return to == S::AuthResponse || to == S::Command || to == S::UpstreamOpening;
    case S::AuthResponse:
        return to == S::AuthBackend || to == S::Command;
    case S::UpstreamOpening:
        return to == S::Command || to == S::AuthBackend;
    case S::DataBody:
        return to == S::Command;
    case S::Closed:
        return false;
    }
    return false;
}

}  // namespace

ClientProtocol::ClientProtocol(const Config& config, ClientEndpoint endpoint, ClientProtocolHost& host)
    : config_(config),
      endpoint_(std::move(endpoint)),
      host_(host),
      reader_(static_cast<std::size_t>(config.limits.authLineLength)) {}

void ClientProtocol::setState(State next) {
    // Our own bug if this fires: peers cannot choose transitions, only trigger them.
    assert(legalTransition(state_, next));
    state_ = next;
    updateTimeout();
}

void ClientProtocol::start() {
    if (endpoint_.implicitTls) {
        setState(State::TlsHandshake);
        host_.startTls();
        return;
    }
    greeted_ = true;
    reply(220, config_.hostname + " ESMTP");
    updateTimeout();
}

void ClientProtocol::startImplicitTls() {
    endpoint_.implicitTls = true;
    start();
}

bool ClientProtocol::idle() const {
    return pending_.empty() && state_ != State::DataBody && state_ != State::AuthBackend &&
           state_ != State::UpstreamOpening;
}

void ClientProtocol::updateTimeout() {
    int client = 0;
    switch (state_) {
    case State::Command:
        if (pending_.empty() && !closeAfterReplies_) {
            client = ehloSeen_ ? config_.limits.commandTimeout : config_.limits.greetingTimeout;
        }
        break;
    case State::AuthResponse:
        client = config_.limits.commandTimeout;
        break;
    case State::DataBody:
        client = config_.limits.dataTimeout;
        break;
    case State::TlsHandshake:
        client = config_.limits.tlsHandshakeTimeout;
        break;
    case State::AuthBackend:
    case State::UpstreamOpening:
    case State::Closed:
        break;
    }
    if (state_ == State::Closed) {
        return;
    }
    if (stress_ && !authenticated_ && client > 0) {
        client = std::min(client, config_.limits.stressCommandTimeout);
    }
    host_.setClientTimeout(client);
    int upstream = 0;
    if (!pending_.empty()) {
        upstream = pending_.front().kind == PendingKind::DataEnd ? config_.upstream.dataDoneTimeout
                                                                 : config_.upstream.replyTimeout;
    }
    host_.setUpstreamTimeout(upstream);
}

void ClientProtocol::reply(int code, const std::string& text) {
    if (!clientGone_) {
        count([&](Metrics& m) { m.reply(code); });
        if (answeringCommand_ && !pending_.empty()) {
            // RFC 2920: replies in the order of the commands.  This one answers a command the
            // customer pipelined behind relayed ones, so it waits for their replies from the MSA.
            const std::string wire = formatReply(code, text);
            pending_.back().after += wire;
            heldReplyBytes_ += wire.size();
            return;
        }
        host_.sendToClient(formatReply(code, text));
    }
}

std::string ClientProtocol::noticeLine(int code) const {
    if (config_.migration.notice.empty()) {
        return {};
    }
    return std::to_string(code) + "-" + config_.migration.notice + "\r\n";
}

void ClientProtocol::replyError(int code, const std::string& text) {
    reply(code, text);
    ++counters_.errors;
    if (counters_.errors >= static_cast<unsigned>(config_.limits.maxErrors)) {
        reply(421, "4.7.0 " + config_.hostname + " Error: too many errors");
        close("too many errors");
    }
}

void ClientProtocol::close(const std::string& reason) {
    if (state_ == State::Closed) {
        return;
    }
    accountReleaseAll();  // what was held against the account's limit and will never be answered
    if (state_ == State::DataBody || (upstreamUp_ && !pending_.empty())) {
        host_.upstreamAbort();
        upstreamUp_ = false;
    }
    // Replies held for order wait for MSA replies that will never come now: sending them would
    // pair them with the wrong commands.  Only a final 421 among them (too many errors) goes.
    std::string last;
    for (Pending& p : pending_) {
        if (!p.after.empty()) {
            last = p.after;
        }
        p.after.clear();
    }
    heldReplyBytes_ = 0;
    if (!last.empty() && !clientGone_) {
        const std::size_t start = last.rfind("\r\n", last.size() - 3);
        const std::string final = start == std::string::npos ? last : last.substr(start + 2);
        if (final.rfind("421", 0) == 0) {
            host_.sendToClient(final);
        }
    }
    state_ = State::Closed;
    host_.setClientTimeout(0);
    host_.setUpstreamTimeout(0);
    host_.closeClient(reason);
}

// ---------------------------------------------------------------------------------------------
// The session's end, from outside: timeouts, shedding, the customer leaving, shutdown

void ClientProtocol::onClientTimeout() {
    if (state_ == State::Closed) {
        return;
    }
    if (state_ == State::TlsHandshake) {
        count([](Metrics& m) { ++m.tlsFailures; });
    }
    host_.logInfo(std::string("timeout ") + (state_ == State::DataBody       ? "during DATA"
                                             : state_ == State::AuthResponse ? "during AUTH"
                                             : state_ == State::TlsHandshake ? "during the TLS handshake"
                                             : ehloSeen_                     ? "waiting for a command"
                                                                             : "waiting for HELO/EHLO") +
                  ", helo=" + printable(helo_));
    reply(421, "4.4.2 " + config_.hostname + " Error: timeout exceeded");
    close("timeout");
}

void ClientProtocol::onPreAuthDeadline(int seconds) {
    if (state_ == State::Closed || authenticated_) {
        return;
    }
    host_.logInfo("no successful AUTH within " + std::to_string(seconds) + "s (limits." +
                  (stress_ ? "stress_pre_auth_timeout" : "pre_auth_timeout") + "), helo=" + printable(helo_));
    reply(421, "4.4.2 " + config_.hostname + " Error: timeout exceeded: log in within " + std::to_string(seconds) +
                   " seconds");
    close("pre-AUTH deadline");
}

void ClientProtocol::onShed() {
    if (state_ == State::Closed) {
        return;
    }
    host_.logInfo("closed to make room: limits.max_sessions reached and this session had not authenticated, "
                  "helo=" + printable(helo_));
    reply(421, "4.7.0 " + config_.hostname + " Error: too many connections, try again later");
    close("shed: too many sessions");
}

void ClientProtocol::onClientGone(const std::string& why) {
    if (state_ == State::Closed) {
        return;
    }
    if (state_ == State::TlsHandshake) {
        count([](Metrics& m) { ++m.tlsFailures; });
    }
    if (state_ == State::AuthBackend || state_ == State::AuthResponse) {
        if (config_.auth.backend == AuthBackend::Sasl) {
            host_.authCancel();
        }
    }
    const bool awaitingVerdict = std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) {
        return p.kind == PendingKind::DataEnd;
    });
    if (awaitingVerdict && state_ == State::Command) {
        clientGone_ = true;  // log the MSA's answer, then go
        closeAfterReplies_ = true;
        return;
    }
    close(why);
}

void ClientProtocol::onShutdown() {
    if (state_ == State::Closed) {
        return;
    }
    const bool awaitingVerdict = std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) {
        return p.kind == PendingKind::DataEnd;
    });
    if (awaitingVerdict) {
        shutdownRequested_ = true;
        return;
    }
    reply(421, "4.3.2 " + config_.hostname + " Service shutting down, try again later");
    close("shutdown");
}

}  // namespace subproxy
