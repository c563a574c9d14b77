// The customer-side engine, relaying: MAIL/RCPT/DATA/RSET/NOOP/QUIT to the MSA with pipelining
// kept, and its replies back in order.  See client_protocol.h.
#include <algorithm>
#include <cstdlib>

#include "engine/client_protocol.h"
#include "wire/identity.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

bool startsWithParam(const std::string& param, std::string_view key) {
    return param.size() >= key.size() && iequals(std::string_view(param).substr(0, key.size()), key) &&
           (param.size() == key.size() || param[key.size()] == '=');
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Relay

// Whether `reply` can be the answer to `kind` at all (RFC 5321 §4.3.2, RFC 4954).  Replies come
// back in order (RFC 2920), so a reply that cannot answer the command at the head of the queue
// means the stream is out of step: an extra or missing reply shifts every later one, and a 250
// where a 354 is owed would make the customer send its body as commands.
bool ClientProtocol::plausibleReply(PendingKind kind, const Reply& reply) {
    using K = PendingKind;
    const int klass = reply.klass();
    if (klass == 4 || klass == 5) {
        return true;  // any command may be refused
    }
    switch (kind) {
    case K::Data:
        return reply.code == 354;
    case K::AuthLine:
        return reply.code == 334 || reply.code == 235;
    case K::Quit:
        return klass == 2;
    case K::Mail:
    case K::Rcpt:
    case K::DataEnd:
    case K::Rset:
    case K::Noop:
    case K::EhloReset:
        return klass == 2;
    }
    return false;
}

const char* ClientProtocol::pendingName(PendingKind kind) {
    switch (kind) {
    case PendingKind::Mail: return "MAIL";
    case PendingKind::Rcpt: return "RCPT";
    case PendingKind::Data: return "DATA";
    case PendingKind::DataEnd: return "the end of DATA";
    case PendingKind::Rset: return "RSET";
    case PendingKind::Noop: return "NOOP";
    case PendingKind::Quit: return "QUIT";
    case PendingKind::EhloReset: return "EHLO";
    case PendingKind::AuthLine: return "AUTH";
    }
    return "?";
}

const char* ClientProtocol::metricsName(PendingKind kind) {
    switch (kind) {
    case PendingKind::Mail: return "mail";
    case PendingKind::Rcpt: return "rcpt";
    case PendingKind::Data: return "data";
    case PendingKind::DataEnd: return "end_of_data";
    case PendingKind::Rset: return "rset";
    case PendingKind::Noop: return "noop";
    case PendingKind::Quit: return "quit";
    case PendingKind::EhloReset: return "rset";  // the EHLO after AUTH is an RSET at the MSA
    case PendingKind::AuthLine: return "auth";
    }
    return "?";
}


void ClientProtocol::cmdMail(const Command& cmd) {
    auto path = parsePathCommand(cmd.arg, "FROM");
    if (!path) {
        replyError(501, "5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    // Canonical form whatever the customer sent ("FROM:alice@x", "FROM: <alice@x>").
    std::string line = "MAIL FROM:<" + path->path + ">";
    for (const auto& param : path->params) {
        if (startsWithParam(param, "AUTH")) {
            continue;  // RFC 4954 §5: the MSA decides the AUTH= identity, not the customer
        }
        if (startsWithParam(param, "SIZE")) {
            const std::string value = param.size() > 5 ? param.substr(5) : "";
            char* end = nullptr;
            const unsigned long long size = std::strtoull(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0') {
                replyError(501, "5.5.4 Error: bad SIZE parameter");
                return;
            }
            if (config_.limits.maxMessageSize && size > config_.limits.maxMessageSize) {
                replyError(552, "5.3.4 Error: message size exceeds fixed limit");
                return;
            }
        }
        if (iequals(param, "BODY=BINARYMIME")) {
            replyError(555, "5.5.4 Error: BODY=BINARYMIME requires CHUNKING, which is not offered");
            return;
        }
        line += " " + param;
    }
    relayCounted(PendingKind::Mail, line, SendingKind::Message, path->path);
}

void ClientProtocol::cmdRcpt(const Command& cmd) {
    auto path = parsePathCommand(cmd.arg, "TO");
    if (!path) {
        // Nothing here is ours to enforce (unlike MAIL's AUTH= and SIZE=): the MSA judges the
        // line as sent, and its reply keeps its place among the pipelined ones (RFC 2920).
        relayCounted(PendingKind::Rcpt, "RCPT " + cmd.arg, SendingKind::Recipient);
        return;
    }
    // Canonical form whatever the customer sent ("TO: bob@x"): the MSA may be strict.
    std::string line = "RCPT TO:<" + path->path + ">";
    for (const auto& param : path->params) {
        line += " " + param;
    }
    relayCounted(PendingKind::Rcpt, line, SendingKind::Recipient);
}

void ClientProtocol::cmdData(const Command& cmd) {
    if (!cmd.arg.empty()) {
        replyError(501, "5.5.4 Syntax: DATA");
        return;
    }
    relay(PendingKind::Data, "DATA");
}

void ClientProtocol::relayOrAnswerOk(PendingKind kind, const std::string& line) {
    if (!authenticated_) {
        reply(250, "2.0.0 Ok");  // no transaction at the MSA to reset or keep alive yet
    } else {
        relay(kind, line);
    }
}

void ClientProtocol::cmdQuit() {
    if (!authenticated_ || !upstreamUp_) {
        reply(221, "2.0.0 Bye");
        close("quit");
    } else {
        relay(PendingKind::Quit, "QUIT");
        closeAfterReplies_ = true;
    }
}

void ClientProtocol::relay(PendingKind kind, const std::string& line, std::string detail) {
    pending_.push_back(Pending{kind, std::move(detail), {}});
    host_.upstreamCommandSent(metricsName(kind));
    host_.upstreamSend(line + "\r\n");
    updateTimeout();
}

void ClientProtocol::onUpstreamReply(const Reply& msaReply) {
    if (state_ == State::Closed || !replyInStep(msaReply)) {
        return;
    }
    const Pending done = pending_.front();
    pending_.pop_front();
    accountReply(done, msaReply.positive());
    if (done.kind == PendingKind::AuthLine && msaReply.code == 235 && accountRefusesMsaLogin()) {
        return;
    }
    passReplyOn(done, msaReply);
    count([&](Metrics& m) { m.reply(msaReply.code); });
    applyReply(done, msaReply);
    if (state_ == State::Closed) {
        return;
    }
    if (closeAfterReplies_ && pending_.empty() && state_ == State::Command) {
        close("quit");
        return;
    }
    updateTimeout();
    processInput();
}

bool ClientProtocol::replyInStep(const Reply& msaReply) {
    if (pending_.empty()) {
        // RFC 5321 has no unsolicited replies; the stream is out of step (checklist #9).
        host_.logWarning("unexpected reply from the MSA: " + printable(msaReply.text()));
    } else if (!plausibleReply(pending_.front().kind, msaReply)) {
        host_.logWarning("MSA reply out of step: " + printable(msaReply.text(), 200) + " cannot answer " +
                         pendingName(pending_.front().kind) + "; closing both sides");
        count([](Metrics& m) { m.upstreamError("protocol"); });
    } else {
        return true;
    }
    reply(421, "4.4.2 " + config_.hostname + " Error: mail server out of sync, try again later");
    close("MSA out of sync");
    return false;
}

void ClientProtocol::passReplyOn(const Pending& done, const Reply& msaReply) {
    if (done.kind == PendingKind::EhloReset && !clientGone_) {
        // The EHLO after AUTH is ours to answer (the MSA's capabilities, filtered); the MSA
        // only had to forget its transaction.
        host_.sendToClient(ehloReply(extended_));
    } else if (!clientGone_) {
        // migration.notice goes first; the MSA's own final line stays last and unchanged.
        const bool notice = (done.kind == PendingKind::DataEnd && msaReply.klass() == 2) ||
                            (done.kind == PendingKind::AuthLine && msaReply.code == 235);
        host_.sendToClient((notice ? noticeLine(msaReply.code) : std::string()) + msaReply.wire());
    }
    if (!done.after.empty()) {
        heldReplyBytes_ -= std::min(heldReplyBytes_, done.after.size());
        if (!clientGone_) {
            host_.sendToClient(done.after);  // our replies to what the customer pipelined behind it
        }
    }
}

void ClientProtocol::applyReply(const Pending& done, const Reply& msaReply) {
    switch (done.kind) {
    case PendingKind::Mail:
        if (msaReply.positive()) {
            inTransaction_ = true;
            mailFrom_ = done.detail;
            rcptAccepted_ = 0;
        }
        break;
    case PendingKind::Rcpt:
        if (msaReply.positive()) {
            ++rcptAccepted_;
        }
        break;
    case PendingKind::Data:
        if (msaReply.code == 354) {
            scanner_.emplace(config_.dataBareNewline, config_.limits.maxMessageSize);
            dataAborted_ = false;
            setState(State::DataBody);
        }
        break;
    case PendingKind::DataEnd:
        messageVerdict(msaReply);
        break;
    case PendingKind::Rset:
    case PendingKind::EhloReset:
        endTransaction();
        break;
    case PendingKind::Quit:
        close("quit");
        break;
    case PendingKind::AuthLine:
        relayedAuthReplied(msaReply);
        break;
    case PendingKind::Noop:
        break;
    }
}

void ClientProtocol::relayedAuthReplied(const Reply& msaReply) {
    authVerdict(msaReply.code);
    if (msaReply.code == 334) {
        setState(State::AuthResponse);
        return;
    }
    if (msaReply.code == 235) {
        // The MSA's canonical name is not ours to see: the name as typed, spelled the way a
        // Cyrus MSA looks it up (auth.sasl_realm: the MSA's realm), for the log and the report.
        user_ = canonicalUser(user_, defaultRealm(config_));
        markAuthenticated();
        setState(State::Command);
        startPasswordCheck();  // accounts.passwords: flagged in the log and report, no notice here
        count([&](Metrics& m) { m.authResult(authMech_, true); });
        reader_.setLimit(static_cast<std::size_t>(config_.limits.commandLineLength));
        host_.logInfo("SASL " + authMech_ + " authentication succeeded (verified by the MSA), sasl_username=" +
                      printable(user_));
        return;
    }
    setState(State::Command);
    if (msaReply.code == 535) {
        ++counters_.authFailures;
        count([&](Metrics& m) { m.authResult(authMech_, false); });
        host_.logWarning("SASL " + authMech_ + " authentication failed: rejected by the MSA, sasl_username=" +
                         printable(user_));
    }
    ++counters_.errors;
    if (counters_.authFailures >= static_cast<unsigned>(config_.limits.maxAuthFailures) ||
        counters_.errors >= static_cast<unsigned>(config_.limits.maxErrors)) {
        reply(421, "4.7.0 " + config_.hostname + " Error: too many failed authentications");
        close("too many AUTH failures");
    }
}

void ClientProtocol::endTransaction() {
    accountEndTransaction();
    inTransaction_ = false;
    mailFrom_.clear();
    rcptAccepted_ = 0;
}

}  // namespace subproxy
