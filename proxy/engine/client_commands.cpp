// The customer-side engine, input and dispatch: bytes into lines (or into the DATA body), each
// line through the command table's gates (TLS first, then AUTH) to its handler, with the
// spambot trap and the DNSBL verdict where a command shows what the client is.  See
// client_protocol.h.
#include <cassert>

#include "engine/client_protocol.h"
#include "wire/text_util.h"

namespace subproxy {

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
        if (!readyForLine()) {
            return;
        }
        const std::optional<LineResult> r = nextLine();
        if (!r) {
            return;
        }
        // Replies from here on answer this line: ordered behind the MSA's pending ones.
        answeringCommand_ = true;
        const struct Done {
            bool& flag;
            ~Done() { flag = false; }
        } done{answeringCommand_};
        switch (r->status) {
        case LineResult::Status::NeedMore:
            return;
        case LineResult::Status::Line:
            if (state_ == State::AuthResponse) {
                handleAuthResponse(r->line);
            } else {
                handleLine(r->line);
            }
            break;
        case LineResult::Status::TooLong:
            refuseLongLine();
            break;
        case LineResult::Status::BadEnding:
            refuseBadLineEnding();
            break;
        }
    }
}

bool ClientProtocol::readyForLine() const {
    if (state_ != State::Command && state_ != State::AuthResponse) {
        return false;  // waiting for TLS, a SASL backend or the MSA
    }
    if (state_ == State::AuthResponse) {
        return true;
    }
    if (closeAfterReplies_) {
        return false;
    }
    if (pending_.size() >= static_cast<std::size_t>(config_.limits.maxPipelined) ||
        heldReplyBytes_ > kMaxHeldReplyBytes) {
        return false;  // bounded: resume when the MSA catches up
    }
    if (!pending_.empty() && (pending_.back().kind == PendingKind::Data ||
                              pending_.back().kind == PendingKind::AuthLine)) {
        return false;  // what follows DATA is body or command depending on the MSA's answer
    }
    return true;
}

std::optional<LineResult> ClientProtocol::nextLine() {
    if (!deferred_) {
        return reader_.next();
    }
    // A MAIL or RCPT put off by the account's limit (client_accounts.cpp): it waits for this
    // session's own commands under way, and so does everything behind it.
    if (accountAwaitsReplies()) {
        return std::nullopt;
    }
    LineResult r;
    r.status = LineResult::Status::Line;
    r.line = std::move(*deferred_);
    deferred_.reset();
    return r;
}

void ClientProtocol::refuseLongLine() {
    if (state_ != State::AuthResponse) {
        replyError(500, "5.5.2 Error: line too long");
        return;
    }
    if (config_.auth.backend == AuthBackend::Sasl) {
        host_.authCancel();
        setState(State::Command);
        replyError(500, "5.5.6 SASL response limit exceeded");
    } else {
        // The MSA is mid-exchange; cancel it there and let its 501 be dropped.
        replyError(500, "5.5.6 SASL response limit exceeded");
        close("SASL response too long");
    }
}

void ClientProtocol::refuseBadLineEnding() {
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
    if (refusedOutright(cmd) || refusedOutOfSequence(cmd)) {
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
        if (!dnsblRefusesMail()) {
            cmdMail(cmd);
        }
        return;
    case Verb::Rcpt:
        cmdRcpt(cmd);
        return;
    case Verb::Data:
        cmdData(cmd);
        return;
    case Verb::Rset:
        relayOrAnswerOk(PendingKind::Rset, "RSET");
        return;
    case Verb::Noop:
        relayOrAnswerOk(PendingKind::Noop, "NOOP");
        return;
    case Verb::Quit:
        cmdQuit();
        return;
    case Verb::Help:
        reply(214, "2.0.0 See RFC 5321; mail programs: use port 587 with STARTTLS and your password");
        return;
    default:
        break;
    }
    assert(false && "command table and dispatch disagree");
}

bool ClientProtocol::refusedOutright(const Command& cmd) {
    if (cmd.verb == Verb::Bdat) {
        // The chunk that follows BDAT is raw bytes we would otherwise read as commands
        // (checklist #33): refuse and leave rather than try to skip it.
        reply(502, "5.5.1 Error: BDAT without CHUNKING");
        reply(421, "4.7.0 " + config_.hostname + " Error: closing connection");
        close("BDAT without CHUNKING");
        return true;
    }
    if (!(cmd.spec().flags & kRefused)) {
        return false;
    }
    if (cmd.verb == Verb::Unknown) {
        host_.logInfo("unknown command: " + printable(cmd.verbText, 16));
        replyError(502, "5.5.2 Error: command not recognized");
    } else {
        replyError(502, "5.5.1 Error: command not implemented");
    }
    return true;
}

bool ClientProtocol::refusedOutOfSequence(const Command& cmd) {
    const unsigned flags = cmd.spec().flags;
    if (!tls_ && !(flags & kPreTls)) {
        if (cmd.verb == Verb::Mail) {
            // The same line as after STARTTLS: on port 25 this is where most bots stop.
            host_.logInfo("MAIL without AUTH refused before STARTTLS, helo=" + printable(helo_));
        }
        if (!trapUnauthenticated(cmd)) {
            replyError(530, "5.7.0 " + config_.replies.tlsRequired);
        }
        return true;
    }
    if (tls_ && !ehloSeen_ && (cmd.verb == Verb::Mail || cmd.verb == Verb::Rcpt || cmd.verb == Verb::Data)) {
        // RFC 3207 §4.2: TLS wiped the EHLO; say what is missing first (checklist #6).
        replyError(503, "5.5.1 Error: send HELO/EHLO first");
        return true;
    }
    if (tls_ && !authenticated_ && !(flags & kPreAuth)) {
        if (cmd.verb == Verb::Mail) {
            host_.logInfo("MAIL without AUTH refused, helo=" + printable(helo_));
        }
        if (!trapUnauthenticated(cmd)) {
            replyError(530, "5.7.0 " + config_.replies.authRequired);
        }
        return true;
    }
    return false;
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

bool ClientProtocol::dnsblRefusesMail() {
    if (!dnsbl_.listed || !config_.dnsbl.blockAuthenticated) {
        return false;
    }
    // Opt-in (dnsbl.block_authenticated): even a correct password does not relay from a
    // listed address.  Refused at MAIL, so no transaction starts.
    host_.logWarning("dnsbl: MAIL refused for authenticated client, sasl_username=" + printable(user_) + ", " +
                     dnsbl_.summary);
    replyError(550, "5.7.1 " + dnsbl_.reply);
    return true;
}

}  // namespace subproxy
