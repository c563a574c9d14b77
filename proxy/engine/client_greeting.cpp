// The customer-side engine, greeting: HELO/EHLO and the capabilities we announce, STARTTLS and
// what TLS makes us forget (RFC 3207 §4.2).  See client_protocol.h.
#include "engine/client_protocol.h"
#include "wire/text_util.h"

namespace subproxy {

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

}  // namespace subproxy
