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
// Input

void ClientProtocol::onClientData(std::string_view bytes) {
    if (state_ == State::Closed || clientGone_) {
        return;
    }
    if (!sawInput_ && !bytes.empty()) {
        sawInput_ = true;
        // A TLS ClientHello on the STARTTLS port: a scanner or a misconfigured client.
        const std::string hello = tls_ || endpoint_.implicitTls ? std::string() : detectBinaryHello(bytes);
        if (!hello.empty() && trapRefused(TrapSignal::NonSmtp, hello,
                                          "5.5.1 " + config_.hostname + " Error: this is an SMTP server")) {
            return;
        }
    }
    reader_.append(bytes);
    processInput();
}

void ClientProtocol::processInput() {
    while (state_ != State::Closed) {
        if (state_ == State::DataBody) {
            if (reader_.buffered() == 0) {
                return;
            }
            feedData();
            continue;
        }
        if (state_ != State::Command && state_ != State::AuthResponse) {
            return;  // waiting for TLS, a SASL backend or the MSA
        }
        if (state_ == State::Command) {
            if (closeAfterReplies_) {
                return;
            }
            if (pending_.size() >= static_cast<std::size_t>(config_.limits.maxPipelined) ||
                heldReplyBytes_ > kMaxHeldReplyBytes) {
                return;  // bounded: resume when the MSA catches up
            }
            if (!pending_.empty() && (pending_.back().kind == PendingKind::Data ||
                                      pending_.back().kind == PendingKind::AuthLine)) {
                return;  // what follows DATA is body or command depending on the MSA's answer
            }
        }
        LineResult r;
        if (deferred_) {
            // A MAIL or RCPT put off by the account's limit (client_accounts.cpp): it waits
            // for this session's own commands under way, and so does everything behind it.
            if (accountAwaitsReplies()) {
                return;
            }
            r.status = LineResult::Status::Line;
            r.line = std::move(*deferred_);
            deferred_.reset();
        } else {
            r = reader_.next();
        }
        // Replies from here on answer this line: ordered behind the MSA's pending ones.
        answeringCommand_ = true;
        const struct Done {
            bool& flag;
            ~Done() { flag = false; }
        } done{answeringCommand_};
        switch (r.status) {
        case LineResult::Status::NeedMore:
            return;
        case LineResult::Status::Line:
            if (state_ == State::AuthResponse) {
                handleAuthResponse(r.line);
            } else {
                handleLine(r.line);
            }
            break;
        case LineResult::Status::TooLong:
            if (state_ == State::AuthResponse) {
                if (config_.auth.backend == AuthBackend::Sasl) {
                    host_.authCancel();
                    setState(State::Command);
                    replyError(500, "5.5.6 SASL response limit exceeded");
                } else {
                    // The MSA is mid-exchange; cancel it there and let its 501 be dropped.
                    replyError(500, "5.5.6 SASL response limit exceeded");
                    close("SASL response too long");
                }
            } else {
                replyError(500, "5.5.2 Error: line too long");
            }
            break;
        case LineResult::Status::BadEnding:
            host_.logWarning("bare <CR> or <LF> or NUL in command");
            if (trapRefused(TrapSignal::BareNewline, "bare <CR> or <LF> or NUL in command",
                            "5.5.2 " + config_.hostname + " Error: bare <CR> or <LF> in command")) {
                return;
            }
            if (state_ == State::AuthResponse && config_.auth.backend == AuthBackend::Sasl) {
                host_.authCancel();
                setState(State::Command);
            }
            replyError(500, "5.5.2 Error: bare <CR> or <LF> in command");
            if (state_ == State::AuthResponse) {
                close("bare newline in AUTH exchange");
            }
            break;
        }
    }
}

void ClientProtocol::handleLine(const std::string& line) {
    ++counters_.commands;
    if (!authenticated_) {
        // postscreen's NON-SMTP COMMAND test: an HTTP proxy abuser or a web scanner.
        const std::string http = detectHttpLine(line);
        if (!http.empty() && trapRefused(TrapSignal::NonSmtp, http + ": " + line,
                                         "5.5.1 " + config_.hostname + " Error: this is an SMTP server")) {
            return;
        }
    }
    const Command cmd = parseCommand(line);
    if (!authenticated_ && cmd.verb != Verb::Auth &&
        line.size() > static_cast<std::size_t>(config_.limits.commandLineLength)) {
        replyError(500, "5.5.2 Error: line too long");
        return;
    }
    handleCommand(cmd);
}

void ClientProtocol::handleCommand(const Command& cmd) {
    const unsigned flags = cmd.spec().flags;
    if (cmd.verb == Verb::Bdat) {
        // The chunk that follows BDAT is raw bytes we would otherwise read as commands
        // (checklist #33): refuse and leave rather than try to skip it.
        reply(502, "5.5.1 Error: BDAT without CHUNKING");
        reply(421, "4.7.0 " + config_.hostname + " Error: closing connection");
        close("BDAT without CHUNKING");
        return;
    }
    if (flags & kRefused) {
        if (cmd.verb == Verb::Unknown) {
            host_.logInfo("unknown command: " + printable(cmd.verbText, 16));
            replyError(502, "5.5.2 Error: command not recognized");
        } else {
            replyError(502, "5.5.1 Error: command not implemented");
        }
        return;
    }
    if (!tls_ && !(flags & kPreTls)) {
        if (cmd.verb == Verb::Mail) {
            // The same line as after STARTTLS: on port 25 this is where most bots stop.
            host_.logInfo("MAIL without AUTH refused before STARTTLS, helo=" + printable(helo_));
        }
        if (trapUnauthenticated(cmd)) {
            return;
        }
        replyError(530, "5.7.0 " + config_.replies.tlsRequired);
        return;
    }
    if (tls_ && !ehloSeen_ && (cmd.verb == Verb::Mail || cmd.verb == Verb::Rcpt || cmd.verb == Verb::Data)) {
        // RFC 3207 §4.2: TLS wiped the EHLO; say what is missing first (checklist #6).
        replyError(503, "5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (tls_ && !authenticated_ && !(flags & kPreAuth)) {
        if (cmd.verb == Verb::Mail) {
            host_.logInfo("MAIL without AUTH refused, helo=" + printable(helo_));
        }
        if (trapUnauthenticated(cmd)) {
            return;
        }
        replyError(530, "5.7.0 " + config_.replies.authRequired);
        return;
    }
    switch (cmd.verb) {
    case Verb::Helo:
    case Verb::Ehlo:
        cmdHelo(cmd, cmd.verb == Verb::Ehlo);
        return;
    case Verb::StartTls:
        cmdStartTls(cmd);
        return;
    case Verb::Auth:
        cmdAuth(cmd);
        return;
    case Verb::Mail:
        if (dnsbl_.listed && config_.dnsbl.blockAuthenticated) {
            // Opt-in (dnsbl.block_authenticated): even a correct password does not relay
            // from a listed address.  Refused at MAIL, so no transaction starts.
            host_.logWarning("dnsbl: MAIL refused for authenticated client, sasl_username=" + printable(user_) +
                             ", " + dnsbl_.summary);
            replyError(550, "5.7.1 " + dnsbl_.reply);
            return;
        }
        cmdMail(cmd);
        return;
    case Verb::Rcpt:
        cmdRcpt(cmd);
        return;
    case Verb::Data:
        if (!cmd.arg.empty()) {
            replyError(501, "5.5.4 Syntax: DATA");
            return;
        }
        relay(PendingKind::Data, "DATA");
        return;
    case Verb::Rset:
        if (!authenticated_) {
            reply(250, "2.0.0 Ok");
        } else {
            relay(PendingKind::Rset, "RSET");
        }
        return;
    case Verb::Noop:
        if (!authenticated_) {
            reply(250, "2.0.0 Ok");
        } else {
            relay(PendingKind::Noop, "NOOP");
        }
        return;
    case Verb::Quit:
        if (!authenticated_ || !upstreamUp_) {
            reply(221, "2.0.0 Bye");
            close("quit");
        } else {
            relay(PendingKind::Quit, "QUIT");
            closeAfterReplies_ = true;
        }
        return;
    case Verb::Help:
        reply(214, "2.0.0 See RFC 5321; mail programs: use port 587 with STARTTLS and your password");
        return;
    default:
        break;
    }
    assert(false && "command table and dispatch disagree");
}

// ---------------------------------------------------------------------------------------------
// Spambot trap (trap.h) and the DNSBL verdict at MAIL/RCPT

bool ClientProtocol::trapRefused(TrapSignal signal, const std::string& detail, const std::string& refusal) {
    const TrapAction action = host_.trapSignal(signal, detail);
    if (action != TrapAction::Reject && action != TrapAction::Ban) {
        return false;
    }
    reply(554, refusal);
    close(std::string("trap: ") + trapSignalName(signal));
    return true;
}

// MAIL or RCPT from a client that has not authenticated: on port 25, a bot talking to what it
// takes for a remote MX.  Raises no_auth and, for a DNSBL-listed client (dnsbl.decision =
// "mail"), dnsbl, whose reply replaces the 530 (Exchange's 550 at RCPT).  False: the caller
// sends its usual 530.
bool ClientProtocol::trapUnauthenticated(const Command& cmd) {
    if (cmd.verb != Verb::Mail && cmd.verb != Verb::Rcpt) {
        return false;
    }
    const std::string what = cmd.verbText + " " + cmd.arg;
    if (trapRefused(TrapSignal::NoAuth, what, "5.7.0 " + config_.replies.authRequired)) {
        return true;
    }
    if (!dnsbl_.listed || config_.dnsbl.decision != DnsblDecision::Mail) {
        return false;
    }
    if (trapRefused(TrapSignal::Dnsbl, dnsbl_.summary, "5.7.1 " + dnsbl_.reply)) {
        return true;
    }
    replyError(550, "5.7.1 " + dnsbl_.reply);
    return true;
}

void ClientProtocol::cmdHelo(const Command& cmd, bool extended) {
    if (cmd.arg.empty()) {
        replyError(501, extended ? "5.5.4 Syntax: EHLO hostname" : "5.5.4 Syntax: HELO hostname");
        return;
    }
    helo_ = cmd.arg.substr(0, 255);
    extended_ = extended;
    if (authenticated_) {
        // EHLO resets the transaction (RFC 5321 §4.1.4): reset the MSA too, then answer.
        relay(PendingKind::EhloReset, "RSET");
        return;
    }
    ehloSeen_ = true;
    host_.sendToClient(ehloReply(extended));
    updateTimeout();
}

std::string ClientProtocol::ehloReply(bool extended) const {
    std::vector<std::string> lines{config_.hostname};
    if (extended) {
        if (authenticated_) {
            for (auto& k : relayedCaps(msaCaps_, config_.limits.maxMessageSize)) {
                lines.push_back(k);
            }
        } else if (!tls_) {
            // Before TLS only what is needed to get to TLS (and nothing to tempt a password).
            lines.push_back("ENHANCEDSTATUSCODES");
            lines.push_back("STARTTLS");
        } else {
            const std::string mechs = join(config_.auth.mechanisms, " ");
            // What the MSA will take (when known): a client that reads EHLO only once, here,
            // must learn SMTPUTF8 and the MSA's SIZE now.
            for (auto& k : capsBeforeAuth(host_.knownMsaCaps(), config_.limits.maxMessageSize)) {
                lines.push_back(k);
            }
            lines.push_back("AUTH " + mechs);
            lines.push_back("AUTH=" + mechs);  // pre-RFC 2554 clients (Outlook Express era)
        }
    }
    std::string text;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        text += (i ? "\n" : "") + lines[i];
    }
    return formatReply(250, text);
}

void ClientProtocol::cmdStartTls(const Command& cmd) {
    if (tls_) {
        replyError(503, "5.5.1 Error: TLS already active");
        return;
    }
    if (!cmd.arg.empty()) {
        replyError(501, "5.5.4 Syntax: STARTTLS");
        return;
    }
    if (reader_.buffered() > 0) {
        // Plaintext pipelined behind STARTTLS would otherwise be taken as sent over TLS
        // (CVE-2011-0411, CVE-2014-3556).  Never run it; tell the client and leave.
        host_.logWarning("STARTTLS command injection: " + std::to_string(reader_.buffered()) +
                         " bytes pipelined after STARTTLS, helo=" + printable(helo_));
        reader_.clear();
        reply(554, "5.5.0 Error: command pipelined after STARTTLS");
        close("pipelining after STARTTLS");
        return;
    }
    reply(220, "2.0.0 Ready to start TLS");
    setState(State::TlsHandshake);
    host_.startTls();
}

void ClientProtocol::onTlsEstablished() {
    if (state_ != State::TlsHandshake) {
        return;
    }
    // RFC 3207 §4.2: forget everything learned before TLS.
    count([](Metrics& m) { ++m.tlsHandshakes; });
    tls_ = true;
    ehloSeen_ = false;
    helo_.clear();
    reader_.clear();
    setState(State::Command);
    if (!greeted_) {
        greeted_ = true;
        reply(220, config_.hostname + " ESMTP");
    }
    processInput();
}

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
