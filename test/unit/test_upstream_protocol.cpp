// UpstreamDialog: the MSA-side handshake (greeting, EHLO, STARTTLS, EHLO, XCLIENT or replayed
// AUTH, EHLO), driven reply by reply.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "wire/base64.h"
#include "engine/upstream_protocol.h"
#include "wire/proxy_header.h"
#include "wire/xtext.h"

namespace subproxy {
// Printable failure kinds for BOOST_TEST messages.
static std::ostream& operator<<(std::ostream& os, UpstreamFailure kind) {
    return os << "UpstreamFailure(" << static_cast<int>(kind) << ")";
}
}  // namespace subproxy

using namespace subproxy;

namespace {

// UpstreamDialog keeps a reference to its config: it must outlive the dialog (no temporaries).
const UpstreamConfig kDefaultConfig{};

Reply msa(int code, std::vector<std::string> lines) {
    Reply r;
    r.code = code;
    r.lines = std::move(lines);
    return r;
}

UpstreamIdentity identity(const std::string& address = "192.0.2.10") {
    UpstreamIdentity id;
    id.login = "user+x=y@example.com";
    id.password = "secret";
    id.helo = "client.example";
    id.client.address = address;
    id.client.port = 51234;
    id.client.destAddress = "198.51.100.1";
    id.client.destPort = 25;
    return id;
}

const std::vector<std::string> kAllXclient{"XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT"};

Reply ehloReply(std::vector<std::string> keywords) {
    keywords.insert(keywords.begin(), "msa.test");
    return msa(250, keywords);
}

const Reply kGreeting = msa(220, {"msa.test ESMTP Postfix"});

// Greeting, EHLO, STARTTLS, 220, handshake; returns the action after the handshake.
UpstreamDialog::Action throughTls(UpstreamDialog& d) {
    auto a = d.onReply(kGreeting);
    BOOST_REQUIRE_EQUAL(a.send, "EHLO proxy.test\r\n");
    BOOST_REQUIRE(!a.failed);
    a = d.onReply(ehloReply({"PIPELINING", "STARTTLS", "XCLIENT ADDR"}));
    BOOST_REQUIRE_EQUAL(a.send, "STARTTLS\r\n");
    BOOST_REQUIRE(!a.startTls);
    a = d.onReply(msa(220, {"2.0.0 Ready to start TLS"}));
    BOOST_REQUIRE(a.startTls);
    BOOST_REQUIRE_EQUAL(a.send, "");
    a = d.onTlsEstablished();
    BOOST_REQUIRE_EQUAL(a.send, "EHLO proxy.test\r\n");
    return a;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(upstream_protocol)

BOOST_AUTO_TEST_CASE(starttls_xclient_full_dialog) {
    UpstreamConfig cfg;
    UpstreamDialog d(cfg, "proxy.test", identity(), false, true);
    throughTls(d);
    auto caps = kAllXclient;
    caps.push_back("AUTH PLAIN LOGIN");
    auto a = d.onReply(ehloReply(caps));
    BOOST_TEST(!a.failed);
    BOOST_TEST(!a.ready);
    BOOST_TEST(a.send ==
               "XCLIENT LOGIN=user+2Bx+3Dy@example.com HELO=client.example NAME=[UNAVAILABLE] PROTO=ESMTP "
               "DESTADDR=198.51.100.1 DESTPORT=25 PORT=51234 ADDR=192.0.2.10\r\n");
    a = d.onReply(msa(220, {"msa.test ESMTP Postfix"}));
    BOOST_TEST(a.send == "EHLO client.example\r\n");
    BOOST_TEST(!a.ready);
    a = d.onReply(ehloReply({"PIPELINING", "SIZE 10240000", "8BITMIME", "DSN"}));
    BOOST_TEST(a.ready);
    BOOST_TEST(a.send == "");
    BOOST_TEST(!a.failed);
    BOOST_TEST(d.caps().has("DSN"));
    BOOST_TEST(d.caps().size() == 10240000u);
    BOOST_TEST(!d.caps().has("XCLIENT"));
    // Anything more is out of step.
    a = d.onReply(msa(250, {"surprise"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Protocol);
}

BOOST_AUTO_TEST_CASE(xclient_ipv6_and_only_advertised_attributes) {
    UpstreamConfig cfg;
    UpstreamDialog d(cfg, "proxy.test", identity("2001:db8::1"), false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply({"XCLIENT ADDR LOGIN"}));
    BOOST_TEST(a.send == "XCLIENT LOGIN=user+2Bx+3Dy@example.com ADDR=IPV6:2001:db8::1\r\n");
}

BOOST_AUTO_TEST_CASE(xclient_attributes_split_on_blanks_in_any_case) {
    // The attribute list is read word by word: runs of spaces and tabs separate, case does not
    // matter, and a word only matches whole (ADDRESS is not ADDR, XCLIENTS is not XCLIENT).
    const auto words = [](const std::string& line) {
        return buildXclient(identity(), parseEhloCaps({"msa", "XCLIENTS LOGIN", line}), true);
    };
    auto cmds = words("xclient \t login  Addr\t");
    BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
    BOOST_TEST(cmds[0] == "XCLIENT LOGIN=user+2Bx+3Dy@example.com ADDR=192.0.2.10");
    BOOST_TEST(words("XCLIENT ADDRESS LOGINS").empty());
    BOOST_TEST(words("XCLIENT").empty());
}

BOOST_AUTO_TEST_CASE(xclient_without_login_for_backend_upstream) {
    UpstreamIdentity id = identity();
    id.login.clear();
    UpstreamDialog d(kDefaultConfig, "proxy.test", id, false, false);
    throughTls(d);
    auto a = d.onReply(ehloReply(kAllXclient));
    BOOST_TEST(a.send.find("LOGIN=") == std::string::npos);
    BOOST_TEST(a.send.rfind("XCLIENT HELO=client.example ", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(build_xclient_ipv6_destination) {
    UpstreamIdentity id = identity("2001:db8::1");
    id.client.destAddress = "2001:db8::25";
    const auto cmds = buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true);
    BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
    BOOST_TEST(cmds[0].find(" DESTADDR=IPV6:2001:db8::25 ") != std::string::npos);
    BOOST_TEST(cmds[0].substr(cmds[0].size() - 22) == " ADDR=IPV6:2001:db8::1");
}

BOOST_AUTO_TEST_CASE(xclient_split_when_values_long) {
    UpstreamIdentity id = identity();
    id.login = std::string(250, 'u');                        // 250 octets: fits alone
    id.helo = std::string(175, 'h') + std::string(26, '+');  // 253 octets once xtext-encoded
    const auto cmds = buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true);
    BOOST_REQUIRE_EQUAL(cmds.size(), 2u);
    std::string all;
    for (const auto& c : cmds) {
        BOOST_TEST(c.size() + 2 < 512u);
        BOOST_TEST(c.rfind("XCLIENT ", 0) == 0u);
        all += c.substr(7);
    }
    BOOST_TEST(cmds[1].substr(cmds[1].size() - 16) == " ADDR=192.0.2.10");
    BOOST_TEST(cmds[0].find("ADDR=") == std::string::npos);
    BOOST_TEST(all.find(" LOGIN=" + id.login + " ") != std::string::npos);
    BOOST_TEST(all.find(" HELO=" + std::string(175, 'h') + [] {
        std::string s;
        for (int i = 0; i < 26; ++i) {
            s += "+2B";
        }
        return s;
    }() + " ") != std::string::npos);

    // The dialog sends them one after the other, each after a 220.
    UpstreamDialog d(kDefaultConfig, "proxy.test", id, false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply(kAllXclient));
    BOOST_TEST(a.send == cmds[0] + "\r\n");
    a = d.onReply(msa(220, {"ok"}));
    BOOST_TEST(a.send == cmds[1] + "\r\n");
    a = d.onReply(msa(220, {"ok"}));
    BOOST_TEST(a.send == "EHLO " + id.helo + "\r\n");
    a = d.onReply(ehloReply({"PIPELINING"}));
    BOOST_TEST(a.ready);
}

// Issue 8 item 7: Postfix refuses the whole XCLIENT when one value is over 255 octets as sent
// ("501 5.5.4 Error: attribute value too long"): a HELO of 86 '=' is 258.
BOOST_AUTO_TEST_CASE(xclient_values_cut_to_postfix_limit_between_escapes) {
    UpstreamIdentity id = identity();
    id.helo = std::string(86, '=');
    const auto cmds = buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true);
    std::string helo;
    for (const auto& c : cmds) {
        const auto at = c.find(" HELO=");
        if (at != std::string::npos) {
            helo = c.substr(at + 6, c.find(' ', at + 6) - at - 6);
        }
    }
    BOOST_TEST(helo.size() == 255u);
    BOOST_TEST(helo == encodeXtext(std::string(85, '=')));
    // Every value of every command within the limit, whatever the HELO.
    for (const std::string& hostile : {std::string(255, '='), std::string(600, 'x'), std::string(300, '\xe9')}) {
        id.helo = hostile;
        for (const auto& c : buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true)) {
            std::size_t pos = 8;  // after "XCLIENT "
            while (pos < c.size()) {
                const std::size_t end = std::min(c.find(' ', pos), c.size());
                const std::string item = c.substr(pos, end - pos);
                BOOST_TEST(item.size() - item.find('=') - 1 <= 255u, item.substr(0, 12));
                pos = end + 1;
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(xclient_login_is_never_cut) {
    // A shortened name could be another customer's: it goes whole (AUTH refuses such names
    // before; should one get here, the MSA refuses it, and nobody is impersonated).
    UpstreamIdentity id = identity();
    id.login = std::string(300, 'a');
    const auto cmds = buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true);
    BOOST_REQUIRE(!cmds.empty());
    BOOST_TEST(cmds[0].rfind("XCLIENT LOGIN=" + id.login + " ", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(xclient_hostile_helo_each_command_under_512) {
    // checklist row 36 + upstream_protocol.h: each XCLIENT command under 512 octets even when the
    // (255-octet) HELO consists of characters xtext must escape.
    UpstreamIdentity id = identity();
    id.helo = std::string(255, '=');
    const auto cmds = buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true);
    BOOST_REQUIRE(!cmds.empty());
    for (const auto& c : cmds) {
        BOOST_TEST(c.size() + 2 < 512u);
    }
    BOOST_TEST(cmds.back().find(" ADDR=192.0.2.10") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(msa_without_starttls_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    auto a = d.onReply(kGreeting);
    BOOST_TEST(a.send == "EHLO proxy.test\r\n");
    a = d.onReply(ehloReply({"PIPELINING", "XCLIENT ADDR LOGIN", "AUTH PLAIN"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Tls);
    BOOST_TEST(a.send == "");  // never plaintext XCLIENT / AUTH
}

BOOST_AUTO_TEST_CASE(starttls_refused_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    d.onReply(kGreeting);
    d.onReply(ehloReply({"STARTTLS"}));
    auto a = d.onReply(msa(454, {"4.7.0 TLS not available"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Tls);
    BOOST_TEST(!a.startTls);
    BOOST_TEST(a.send == "");
}

BOOST_AUTO_TEST_CASE(reply_during_handshake_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    d.onReply(kGreeting);
    d.onReply(ehloReply({"STARTTLS"}));
    auto a = d.onReply(msa(220, {"go"}));
    BOOST_REQUIRE(a.startTls);
    a = d.onReply(msa(250, {"injected"}));
    BOOST_TEST(a.failed);
}

BOOST_AUTO_TEST_CASE(pre_tls_caps_are_forgotten) {
    // XCLIENT offered only before TLS does not count after it (RFC 3207 §4.2).
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    d.onReply(kGreeting);
    d.onReply(ehloReply({"STARTTLS", kAllXclient[0]}));
    d.onReply(msa(220, {"go"}));
    d.onTlsEstablished();
    auto a = d.onReply(ehloReply({"PIPELINING"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Refused);
    BOOST_TEST(a.send == "");
}

BOOST_AUTO_TEST_CASE(non_220_greeting_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    auto a = d.onReply(msa(554, {"5.7.1 go away"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Refused);
    BOOST_TEST(a.send == "");
    BOOST_TEST(a.detail.find("go away") != std::string::npos);
    UpstreamDialog e(kDefaultConfig, "proxy.test", identity(), false, true);
    a = e.onReply(msa(421, {"4.3.2 busy"}));
    BOOST_TEST(a.failed);
}

BOOST_AUTO_TEST_CASE(ehlo_refused_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    d.onReply(kGreeting);
    auto a = d.onReply(msa(502, {"5.5.2 no EHLO"}));
    BOOST_TEST(a.failed);
}

BOOST_AUTO_TEST_CASE(xclient_refused_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply(kAllXclient));
    BOOST_REQUIRE(!a.send.empty());
    a = d.onReply(msa(550, {"5.7.0 Error: insufficient authorization"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Refused);
    BOOST_TEST(!a.ready);
    BOOST_TEST(a.detail == "MSA refused XCLIENT: 550 5.7.0 Error: insufficient authorization; check "
                           "smtpd_authorized_xclient_hosts at the MSA");
}

// The log says what the MSA said, and blames the authorized hosts only when that is the cause.
BOOST_AUTO_TEST_CASE(xclient_refusal_logged_as_the_msa_said_it) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    throughTls(d);
    d.onReply(ehloReply(kAllXclient));
    auto a = d.onReply(msa(501, {"5.5.4 Error: attribute value too long"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.detail == "MSA refused XCLIENT: 501 5.5.4 Error: attribute value too long");

    UpstreamDialog d6(kDefaultConfig, "proxy.test", identity("2001:db8::1"), false, true);
    throughTls(d6);
    d6.onReply(ehloReply(kAllXclient));
    a = d6.onReply(msa(501, {"5.5.4 Bad ADDR syntax: IPV6:2001:db8::1"}));
    BOOST_TEST(a.detail == "MSA refused XCLIENT: 501 5.5.4 Bad ADDR syntax: IPV6:2001:db8::1; IPv6 customers "
                           "need an MSA with inet_protocols = all");
}

// nginx accepts 220 or 250 to XCLIENT; smtp-sink, Exim and Dovecot do not all send 220.
BOOST_AUTO_TEST_CASE(xclient_answered_250_then_ehlo_again) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply(kAllXclient));
    BOOST_REQUIRE_EQUAL(a.send.rfind("XCLIENT LOGIN=", 0), 0u);
    a = d.onReply(msa(250, {"2.0.0 Ok"}));
    BOOST_TEST(!a.failed);
    BOOST_TEST(!a.ready);
    BOOST_TEST(a.send == "EHLO client.example\r\n");
    a = d.onReply(ehloReply({"PIPELINING", "SIZE 1000"}));
    BOOST_TEST(a.ready);
    BOOST_TEST(d.caps().size() == 1000u);
}

BOOST_AUTO_TEST_CASE(xclient_split_each_answered_250) {
    UpstreamIdentity id = identity();
    id.login = std::string(250, 'u');                        // each value fits Postfix's 255,
    id.helo = std::string(175, 'h') + std::string(26, '+');  // together they need two commands
    const auto cmds = buildXclient(id, parseEhloCaps({"msa", kAllXclient[0]}), true);
    BOOST_REQUIRE_EQUAL(cmds.size(), 2u);
    UpstreamDialog d(kDefaultConfig, "proxy.test", id, false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply(kAllXclient));
    BOOST_TEST(a.send == cmds[0] + "\r\n");
    a = d.onReply(msa(250, {"2.0.0 Ok"}));
    BOOST_TEST(a.send == cmds[1] + "\r\n");
    a = d.onReply(msa(250, {"2.0.0 Ok"}));
    BOOST_TEST(a.send == "EHLO " + id.helo + "\r\n");
    a = d.onReply(ehloReply({"PIPELINING"}));
    BOOST_TEST(a.ready);
}

BOOST_AUTO_TEST_CASE(xclient_not_offered_fails) {
    UpstreamDialog d(kDefaultConfig, "proxy.test", identity(), false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply({"PIPELINING", "AUTH PLAIN"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Refused);
}

BOOST_AUTO_TEST_CASE(replay_auth_plain) {
    UpstreamConfig cfg;
    cfg.login = UpstreamLogin::Replay;
    UpstreamIdentity id = identity();
    id.login = "user";
    id.password = "pass";
    UpstreamDialog d(cfg, "proxy.test", id, false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply({"PIPELINING", "AUTH LOGIN PLAIN", "XCLIENT ADDR"}));
    BOOST_TEST(a.send == "AUTH PLAIN " + encodeBase64(std::string("\0user\0pass", 10)) + "\r\n");
    BOOST_TEST(a.send == "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    BOOST_TEST(!a.ready);
    a = d.onReply(msa(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(a.ready);
    BOOST_TEST(!a.failed);
    BOOST_TEST(d.caps().has("PIPELINING"));
}

BOOST_AUTO_TEST_CASE(replay_auth_plain_rejected_fails) {
    UpstreamConfig cfg;
    cfg.login = UpstreamLogin::Replay;
    UpstreamDialog d(cfg, "proxy.test", identity(), false, true);
    throughTls(d);
    d.onReply(ehloReply({"AUTH PLAIN"}));
    auto a = d.onReply(msa(535, {"5.7.8 Error: authentication failed"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Refused);
}

BOOST_AUTO_TEST_CASE(replay_auth_login_two_steps) {
    UpstreamConfig cfg;
    cfg.login = UpstreamLogin::Replay;
    UpstreamIdentity id = identity();
    id.login = "user";
    id.password = "pass";
    UpstreamDialog d(cfg, "proxy.test", id, false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply({"AUTH LOGIN"}));
    BOOST_TEST(a.send == "AUTH LOGIN dXNlcg==\r\n");
    a = d.onReply(msa(334, {"UGFzc3dvcmQ6"}));
    BOOST_TEST(a.send == "cGFzcw==\r\n");
    BOOST_TEST(!a.ready);
    a = d.onReply(msa(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(a.ready);
}

BOOST_AUTO_TEST_CASE(replay_without_plain_or_login_fails) {
    UpstreamConfig cfg;
    cfg.login = UpstreamLogin::Replay;
    UpstreamDialog d(cfg, "proxy.test", identity(), false, true);
    throughTls(d);
    auto a = d.onReply(ehloReply({"AUTH CRAM-MD5"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.send == "");
}

// Backend "upstream", a fresh MSA session after a refused body: the customer's credentials
// again, after XCLIENT (without LOGIN) when the MSA gets one.
BOOST_AUTO_TEST_CASE(log_in_again_without_xclient) {
    UpstreamConfig cfg;
    cfg.login = UpstreamLogin::None;
    UpstreamIdentity id = identity();
    id.login = "alice";
    id.logInAgain = true;
    UpstreamDialog d(cfg, "proxy.test", id, false, false);
    throughTls(d);
    auto a = d.onReply(ehloReply({"PIPELINING", "AUTH PLAIN LOGIN"}));
    BOOST_TEST(a.send == "AUTH PLAIN " + encodeBase64(std::string("\0alice\0secret", 13)) + "\r\n");
    BOOST_TEST(!a.ready);
    a = d.onReply(msa(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(a.ready);
}

BOOST_AUTO_TEST_CASE(log_in_again_after_xclient) {
    UpstreamConfig cfg;  // login = "xclient"
    UpstreamIdentity id = identity();
    id.login = "alice";
    id.logInAgain = true;
    UpstreamDialog d(cfg, "proxy.test", id, false, false);
    throughTls(d);
    auto a = d.onReply(ehloReply({kAllXclient[0], "AUTH LOGIN"}));
    BOOST_TEST(a.send.rfind("XCLIENT HELO=", 0) == 0u);  // no LOGIN=: the MSA verifies
    a = d.onReply(msa(220, {"msa.test ESMTP"}));
    BOOST_TEST(a.send == "EHLO client.example\r\n");
    a = d.onReply(ehloReply({"AUTH LOGIN"}));
    BOOST_TEST(a.send == "AUTH LOGIN " + encodeBase64("alice") + "\r\n");
    a = d.onReply(msa(334, {"UGFzc3dvcmQ6"}));
    BOOST_TEST(a.send == encodeBase64("secret") + "\r\n");
    a = d.onReply(msa(535, {"5.7.8 no"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(a.failure == UpstreamFailure::Refused);
}

// The capability probe stops at the EHLO after TLS: no XCLIENT, no login.
BOOST_AUTO_TEST_CASE(probe_stops_after_the_ehlo_after_tls) {
    UpstreamConfig cfg;  // login = "xclient": still not sent by a probe
    UpstreamDialog d(cfg, "proxy.test", UpstreamIdentity{}, false, false, UpstreamDialog::Purpose::Probe);
    throughTls(d);
    auto a = d.onReply(ehloReply({kAllXclient[0], "SIZE 2000", "SMTPUTF8", "AUTH PLAIN"}));
    BOOST_TEST(a.ready);
    BOOST_TEST(a.send == "");
    BOOST_TEST(d.caps().has("SMTPUTF8"));
    BOOST_TEST(d.caps().size() == 2000u);

    UpstreamConfig implicit;
    implicit.tls = UpstreamTls::Implicit;
    implicit.login = UpstreamLogin::Replay;
    UpstreamDialog i(implicit, "proxy.test", UpstreamIdentity{}, true, false, UpstreamDialog::Purpose::Probe);
    a = i.onReply(kGreeting);
    BOOST_TEST(a.send == "EHLO proxy.test\r\n");
    a = i.onReply(ehloReply({"AUTH PLAIN", "DSN"}));
    BOOST_TEST(a.ready);
    BOOST_TEST(a.send == "");
}

BOOST_AUTO_TEST_CASE(probe_never_ehlos_in_plaintext_only) {
    // A probe keeps the STARTTLS rule: an MSA without STARTTLS fails it, as it fails a session.
    UpstreamDialog d(kDefaultConfig, "proxy.test", UpstreamIdentity{}, false, false, UpstreamDialog::Purpose::Probe);
    d.onReply(kGreeting);
    auto a = d.onReply(ehloReply({"PIPELINING", "SMTPUTF8"}));
    BOOST_TEST(a.failed);
    BOOST_TEST(!a.ready);
}

BOOST_AUTO_TEST_CASE(implicit_tls_skips_starttls) {
    UpstreamConfig cfg;
    cfg.tls = UpstreamTls::Implicit;
    UpstreamDialog d(cfg, "proxy.test", identity(), true, true);
    auto a = d.onReply(kGreeting);
    BOOST_TEST(a.send == "EHLO proxy.test\r\n");
    a = d.onReply(ehloReply({"PIPELINING", "XCLIENT ADDR LOGIN"}));
    BOOST_TEST(!a.startTls);
    BOOST_TEST(a.send == "XCLIENT LOGIN=user+2Bx+3Dy@example.com ADDR=192.0.2.10\r\n");
    a = d.onReply(msa(220, {"ok"}));
    BOOST_TEST(a.send == "EHLO client.example\r\n");
    a = d.onReply(ehloReply({"PIPELINING"}));
    BOOST_TEST(a.ready);
}

BOOST_AUTO_TEST_CASE(implicit_tls_ignores_starttls_keyword) {
    UpstreamConfig cfg;
    cfg.tls = UpstreamTls::StartTls;  // tlsActive wins: the connection is already encrypted
    UpstreamDialog d(cfg, "proxy.test", identity(), true, true);
    d.onReply(kGreeting);
    auto a = d.onReply(ehloReply({"STARTTLS", "XCLIENT ADDR"}));
    BOOST_TEST(a.send == "XCLIENT ADDR=192.0.2.10\r\n");
}

BOOST_AUTO_TEST_CASE(tls_none_skips_starttls) {
    UpstreamConfig cfg;
    cfg.tls = UpstreamTls::None;
    UpstreamDialog d(cfg, "proxy.test", identity(), false, true);
    d.onReply(kGreeting);
    auto a = d.onReply(ehloReply({"STARTTLS", "XCLIENT ADDR"}));
    BOOST_TEST(!a.startTls);
    BOOST_TEST(a.send == "XCLIENT ADDR=192.0.2.10\r\n");
}

BOOST_AUTO_TEST_CASE(login_none_ready_after_ehlo) {
    UpstreamConfig cfg;
    cfg.login = UpstreamLogin::None;
    UpstreamDialog d(cfg, "proxy.test", identity(), false, false);
    throughTls(d);
    auto a = d.onReply(ehloReply({"PIPELINING", "SIZE 1000"}));
    BOOST_TEST(a.ready);
    BOOST_TEST(a.send == "");
    BOOST_TEST(d.caps().size() == 1000u);
}

BOOST_AUTO_TEST_CASE(custom_helo_name_towards_msa) {
    UpstreamDialog d(kDefaultConfig, "relay.isp.example", identity(), false, true);
    auto a = d.onReply(kGreeting);
    BOOST_TEST(a.send == "EHLO relay.isp.example\r\n");
}

BOOST_AUTO_TEST_CASE(proxy_header_names_the_customer) {
    ClientEndpoint client;
    client.address = "192.0.2.7";
    client.port = 51234;
    client.destAddress = "198.51.100.25";
    client.destPort = 25;
    ProxyParse p = parseProxyHeader(upstreamProxyHeader(client));
    BOOST_REQUIRE(p.status == ProxyParse::Status::Done);
    BOOST_TEST(p.header.version == 2);
    BOOST_TEST(!p.header.local);
    BOOST_TEST(formatIpAddress(p.header.source) == "192.0.2.7");
    BOOST_TEST(p.header.sourcePort == 51234);
    BOOST_TEST(formatIpAddress(p.header.destination) == "198.51.100.25");
    BOOST_TEST(p.header.destinationPort == 25);

    client.address = "2001:db8::7";  // the dialled address is IPv4: unspecified IPv6, port 0
    p = parseProxyHeader(upstreamProxyHeader(client));
    BOOST_REQUIRE(p.status == ProxyParse::Status::Done);
    BOOST_TEST(formatIpAddress(p.header.source) == "2001:db8::7");
    BOOST_TEST(formatIpAddress(p.header.destination) == "::");
    BOOST_TEST(p.header.destinationPort == 0);

    // The capability probe has no customer: LOCAL.
    p = parseProxyHeader(upstreamProxyHeader(ClientEndpoint{}));
    BOOST_REQUIRE(p.status == ProxyParse::Status::Done);
    BOOST_TEST(p.header.local);
}

BOOST_AUTO_TEST_SUITE_END()
