// The MSA-side handshake.  See upstream_protocol.h.
#include "engine/upstream_protocol.h"

#include <algorithm>
#include <string_view>

#include "wire/base64.h"
#include "wire/proxy_header.h"
#include "wire/sasl_payload.h"
#include "wire/text_util.h"
#include "wire/xtext.h"

namespace subproxy {

namespace {

constexpr std::size_t kXclientLimit = 500;  // XCLIENT_README: keep each command under 512

// The next blank-separated word of `rest` (advanced past it); empty at the end.  Splits as
// `istream >> string` did (spaces and tabs), without a stream and its locale per call: this
// runs for every attribute of every MSA session.
std::string_view nextWord(std::string_view& rest) {
    const auto start = rest.find_first_not_of(" \t");
    if (start == std::string_view::npos) {
        rest = {};
        return {};
    }
    rest.remove_prefix(start);
    const auto end = std::min(rest.find_first_of(" \t"), rest.size());
    const std::string_view word = rest.substr(0, end);
    rest.remove_prefix(end);
    return word;
}

// The attribute names after the MSA's XCLIENT keyword; empty when it offers none.
std::string_view xclientAttributes(const EhloCaps& caps) {
    for (const auto& k : caps.keywords) {
        std::string_view words = k;
        if (iequals(nextWord(words), "XCLIENT")) {
            return words;
        }
    }
    return {};
}

bool offers(std::string_view attributes, std::string_view name) {
    for (std::string_view word = nextWord(attributes); !word.empty(); word = nextWord(attributes)) {
        if (iequals(word, name)) {
            return true;
        }
    }
    return false;
}

std::string xclientAddress(const std::string& address) {
    return address.find(':') != std::string::npos ? "IPV6:" + address : address;
}

}  // namespace

std::vector<std::string> buildXclient(const UpstreamIdentity& identity, const EhloCaps& caps, bool sendLogin) {
    const std::string_view offered = xclientAttributes(caps);
    std::vector<std::pair<std::string, std::string>> attributes;
    auto add = [&](const std::string& name, const std::string& value) {
        if (value.empty() || !offers(offered, name)) {
            return;
        }
        // Postfix refuses the whole command when one value is over its limit once encoded
        // (xtext can triple a hostile HELO): cut the value to fit, between whole escapes.
        attributes.emplace_back(name, encodeXtextPrefix(value, kXclientMaxValue));
    };
    if (sendLogin && !identity.login.empty() && offers(offered, "LOGIN")) {
        // Never cut: a shortened name could be someone else's.  One that does not fit was
        // refused at AUTH; should one get here, Postfix refuses it and says so.
        attributes.emplace_back("LOGIN", encodeXtext(identity.login));
    }
    add("HELO", identity.helo);
    // The forward-confirmed name (io/client_name), or Postfix's words for none: with
    // [UNAVAILABLE] and [TEMPUNAVAIL] Postfix logs "unknown" and checks no name.
    add("NAME", identity.client.name.empty() ? "[UNAVAILABLE]" : identity.client.name);
    add("PROTO", "ESMTP");
    add("DESTADDR", xclientAddress(identity.client.destAddress));
    add("DESTPORT", identity.client.destPort ? std::to_string(identity.client.destPort) : "");
    add("PORT", identity.client.port ? std::to_string(identity.client.port) : "");
    add("ADDR", xclientAddress(identity.client.address));  // last, as XCLIENT_README asks

    std::vector<std::string> commands;
    std::string current = "XCLIENT";
    for (const auto& [name, value] : attributes) {
        const std::string item = " " + name + "=" + value;
        if (current.size() + item.size() > kXclientLimit && current != "XCLIENT") {
            commands.push_back(current);
            current = "XCLIENT";
        }
        current += item;
    }
    if (current != "XCLIENT") {
        commands.push_back(current);
    }
    return commands;
}

std::string upstreamProxyHeader(const ClientEndpoint& client) {
    ProxyHeader header;
    const auto source = parseIpAddress(client.address);
    if (!source) {
        header.local = true;  // no customer: the MSA uses our own address, as for a health check
        return buildProxyHeaderV2(header);
    }
    header.source = *source;
    header.sourcePort = client.port;
    if (const auto dialled = parseIpAddress(client.destAddress)) {
        header.destination = *dialled;
        header.destinationPort = client.destPort;
    } else {
        header.destination = IpAddress{source->v6, {}};  // unknown: the unspecified address
    }
    return buildProxyHeaderV2(header);
}

UpstreamDialog::UpstreamDialog(const UpstreamConfig& config, std::string ourHelo, UpstreamIdentity identity,
                               bool tlsActive, bool sendLogin, Purpose purpose)
    : config_(config),
      ourHelo_(std::move(ourHelo)),
      identity_(std::move(identity)),
      tlsActive_(tlsActive),
      sendLogin_(sendLogin),
      purpose_(purpose) {}

UpstreamDialog::Action UpstreamDialog::fail(UpstreamFailure kind, const std::string& detail) {
    Action a;
    a.failed = true;
    a.failure = kind;
    a.detail = detail;
    identity_.password.clear();
    return a;
}

UpstreamDialog::Action UpstreamDialog::sending(std::string bytes) {
    Action a;
    a.send = std::move(bytes);
    return a;
}

UpstreamDialog::Action UpstreamDialog::ehlo(const std::string& name, Step next) {
    step_ = next;
    return sending("EHLO " + name + "\r\n");
}

UpstreamDialog::Action UpstreamDialog::ehloAsCustomer() {
    // XCLIENT resets the session to the greeting: introduce the customer's session.
    return ehlo(identity_.helo.empty() ? ourHelo_ : identity_.helo, Step::EhloXclient);
}

UpstreamDialog::Action UpstreamDialog::becomeReady() {
    step_ = Step::Ready;
    Action a;
    a.ready = true;
    return a;
}

UpstreamDialog::Action UpstreamDialog::sendNextXclient() {
    Action a = sending(xclient_.front() + "\r\n");
    xclient_.erase(xclient_.begin());
    return a;
}

namespace {

// The MSA's words for a failure's log line; built only when something failed (a reply's text
// for every reply of every session was a cost of its own).
std::string said(const Reply& reply) { return " (MSA said: " + printable(reply.text(), 200) + ")"; }

}  // namespace

UpstreamDialog::Action UpstreamDialog::onReply(const Reply& reply) {
    switch (step_) {
    case Step::Greeting:
        if (reply.code != 220) {
            return fail(UpstreamFailure::Refused, "MSA refused the connection" + said(reply));
        }
        return ehlo(ourHelo_, Step::Ehlo);
    case Step::Ehlo:
    case Step::EhloTls:
    case Step::EhloXclient:
        return onEhloReply(reply);
    case Step::StartTls:
        if (reply.code != 220) {
            return fail(UpstreamFailure::Tls, "MSA refused STARTTLS" + said(reply));
        }
        step_ = Step::TlsHandshake;
        {
            Action a;
            a.startTls = true;
            return a;
        }
    case Step::Xclient:
        return onXclientReply(reply);
    case Step::AuthLoginUser:
        if (reply.code != 334) {
            return fail(UpstreamFailure::Refused, "MSA refused AUTH LOGIN" + said(reply));
        }
        step_ = Step::AuthLoginPassword;
        {
            Action a = sending(encodeBase64(identity_.password) + "\r\n");
            identity_.password.clear();
            return a;
        }
    case Step::AuthPlain:
    case Step::AuthLoginPassword:
        if (reply.code != 235) {
            return fail(UpstreamFailure::Refused, "MSA refused the customer's credentials" + said(reply));
        }
        return becomeReady();
    case Step::TlsHandshake:
    case Step::Ready:
        break;
    }
    return fail(UpstreamFailure::Protocol, "unexpected reply from the MSA" + said(reply));
}

UpstreamDialog::Action UpstreamDialog::onEhloReply(const Reply& reply) {
    if (reply.code != 250) {
        return fail(UpstreamFailure::Refused, "MSA refused EHLO" + said(reply));
    }
    caps_ = parseEhloCaps(reply.lines);
    if (step_ == Step::Ehlo && !tlsActive_ && config_.tls == UpstreamTls::StartTls) {
        if (!caps_.has("STARTTLS")) {
            // Never fall back to plaintext: the customer's identity would travel in clear.
            return fail(UpstreamFailure::Tls, "MSA does not offer STARTTLS");
        }
        step_ = Step::StartTls;
        return sending("STARTTLS\r\n");
    }
    if (step_ == Step::EhloXclient) {
        return identified();
    }
    if (purpose_ == Purpose::Probe) {
        return becomeReady();  // the capabilities a customer's session would see
    }
    return identify();
}

UpstreamDialog::Action UpstreamDialog::onXclientReply(const Reply& reply) {
    // Postfix answers with a new greeting (220); smtp-sink, Exim and Dovecot may say 250.
    // nginx takes either, and so do we: the EHLO that follows is the same.
    if (reply.code != 220 && reply.code != 250) {
        // What the MSA said comes first; a hint only where it fits the reply: Postfix answers
        // 550 5.7.0 to a host not in smtpd_authorized_xclient_hosts, 501 to a bad value ("Bad
        // DESTADDR syntax: IPV6:..." when it runs with inet_protocols = ipv4).
        std::string hint;
        if (reply.code == 550) {
            hint = "; check smtpd_authorized_xclient_hosts at the MSA";
        } else if (reply.text().find("IPV6:") != std::string::npos) {
            hint = "; IPv6 customers need an MSA with inet_protocols = all";
        }
        return fail(UpstreamFailure::Refused,
                    "MSA refused XCLIENT: " + printable(std::to_string(reply.code) + " " + reply.text(), 200) + hint);
    }
    if (!xclient_.empty()) {
        return sendNextXclient();
    }
    return ehloAsCustomer();
}

UpstreamDialog::Action UpstreamDialog::onTlsEstablished() {
    tlsActive_ = true;
    if (step_ == Step::TlsHandshake) {
        // RFC 3207 §4.2: forget the pre-TLS capabilities and ask again.
        caps_ = EhloCaps{};
        return ehlo(ourHelo_, Step::EhloTls);
    }
    return Action{};  // implicit TLS: the greeting comes next
}

UpstreamDialog::Action UpstreamDialog::identify() {
    switch (config_.login) {
    case UpstreamLogin::Xclient:
        if (!caps_.has("XCLIENT")) {
            return fail(UpstreamFailure::Refused,
                        "MSA does not offer XCLIENT to us (add the proxy to smtpd_authorized_xclient_hosts)");
        }
        xclient_ = buildXclient(identity_, caps_, sendLogin_);
        if (xclient_.empty()) {
            return ehloAsCustomer();
        }
        step_ = Step::Xclient;
        return sendNextXclient();
    case UpstreamLogin::Replay:
        return logIn();
    case UpstreamLogin::None:
        break;
    }
    return identified();
}

UpstreamDialog::Action UpstreamDialog::identified() {
    if (identity_.logInAgain) {
        return logIn();
    }
    return becomeReady();
}

UpstreamDialog::Action UpstreamDialog::logIn() {
    const std::string offered = [&] {
        for (const auto& k : caps_.keywords) {
            if (toUpper(k).rfind("AUTH ", 0) == 0) {
                return " " + toUpper(k.substr(5)) + " ";
            }
        }
        return std::string();
    }();
    if (offered.find(" PLAIN ") != std::string::npos) {
        step_ = Step::AuthPlain;
        Action a = sending("AUTH PLAIN " + encodeBase64(buildPlain(identity_.login, identity_.password)) + "\r\n");
        identity_.password.clear();
        return a;
    }
    if (offered.find(" LOGIN ") != std::string::npos) {
        step_ = Step::AuthLoginUser;
        return sending("AUTH LOGIN " + encodeBase64(identity_.login) + "\r\n");
    }
    return fail(UpstreamFailure::Refused, "MSA offers neither AUTH PLAIN nor AUTH LOGIN");
}

}  // namespace subproxy
