// The engine's side of the spambot trap and the DNSBL verdict (client_commands.cpp), with a
// fake host that records the signals and answers with a chosen action.
#include <boost/test/unit_test.hpp>

#include <map>

#include "engine/client_protocol.h"

using namespace subproxy;

namespace {

struct TrapHost : ClientProtocolHost {
    std::string client;
    int closes = 0;
    std::vector<std::pair<TrapSignal, std::string>> signals;
    std::map<TrapSignal, TrapAction> actions;  // default: Log

    void sendToClient(std::string_view bytes) override { client.append(bytes.data(), bytes.size()); }
    void startTls() override {}
    void authStart(const std::string&, const std::optional<std::string>&) override {}
    void authStep(const std::string&) override {}
    void authCancel() override {}
    void upstreamOpen(const UpstreamIdentity&) override {}
    void upstreamSend(std::string_view) override {}
    void upstreamAbort() override {}
    void closeClient(const std::string&) override { ++closes; }
    void setClientTimeout(int) override {}
    void setUpstreamTimeout(int) override {}
    void logInfo(const std::string&) override {}
    void logWarning(const std::string&) override {}
    TrapAction trapSignal(TrapSignal signal, const std::string& detail) override {
        signals.emplace_back(signal, detail);
        auto it = actions.find(signal);
        return it == actions.end() ? TrapAction::Log : it->second;
    }
    std::string out() {
        std::string s;
        s.swap(client);
        return s;
    }
};

Config baseConfig() {
    Config c;
    c.hostname = "proxy.test";
    return c;
}

struct Fixture {
    Config config = baseConfig();
    TrapHost host;
    std::optional<ClientProtocol> engine;
    void start(const DnsblVerdict& verdict = {}) {
        engine.emplace(config, ClientEndpoint{"192.0.2.1", 1234, "198.51.100.25", 25, false, {}, {}, *parseIpAddress("192.0.2.1")}, host);
        engine->setDnsblVerdict(verdict);
        engine->start();
        host.out();
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(trap_engine)

BOOST_FIXTURE_TEST_CASE(mail_without_auth_raises_no_auth_and_answers_530, Fixture) {
    start();
    engine->onClientData("EHLO bot\r\nMAIL FROM:<spam@example.com>\r\n");
    BOOST_REQUIRE(host.signals.size() == 1u);
    BOOST_TEST(static_cast<int>(host.signals[0].first) == static_cast<int>(TrapSignal::NoAuth));
    BOOST_TEST(host.signals[0].second == "MAIL FROM:<spam@example.com>");
    BOOST_TEST(host.out().find("530 5.7.0 Must issue a STARTTLS command first") != std::string::npos);
    BOOST_TEST(host.closes == 0);
}

BOOST_FIXTURE_TEST_CASE(reject_action_refuses_and_closes, Fixture) {
    host.actions[TrapSignal::NoAuth] = TrapAction::Reject;
    start();
    engine->onClientData("RCPT TO:<victim@example.net>\r\nQUIT\r\n");
    const std::string out = host.out();
    BOOST_TEST(out.find("554 5.7.0 Authentication required") == 0u, out);
    BOOST_TEST(out.find("221") == std::string::npos);  // nothing after the refusal
    BOOST_TEST(host.closes == 1);
}

BOOST_FIXTURE_TEST_CASE(http_and_tls_hello_are_non_smtp, Fixture) {
    start();
    engine->onClientData("GET / HTTP/1.1\r\n");
    BOOST_REQUIRE(host.signals.size() == 1u);
    BOOST_TEST(static_cast<int>(host.signals[0].first) == static_cast<int>(TrapSignal::NonSmtp));
    BOOST_TEST(host.signals[0].second == "HTTP request: GET / HTTP/1.1");
    BOOST_TEST(host.out().find("502") == 0u);  // logged only: the usual unknown-command reply

    Fixture second;
    second.host.actions[TrapSignal::NonSmtp] = TrapAction::Ban;
    second.start();
    second.engine->onClientData(std::string("\x16\x03\x01\x00\x05hello", 10));
    BOOST_TEST(second.host.out().find("554 5.5.1 proxy.test Error: this is an SMTP server") == 0u);
    BOOST_TEST(second.host.closes == 1);
}

BOOST_FIXTURE_TEST_CASE(bare_newline_in_a_command, Fixture) {
    start();
    engine->onClientData("EHLO x\nRSET\r\n");
    BOOST_REQUIRE(host.signals.size() == 1u);
    BOOST_TEST(static_cast<int>(host.signals[0].first) == static_cast<int>(TrapSignal::BareNewline));
    BOOST_TEST(host.out().find("500 5.5.2") == 0u);
}

BOOST_FIXTURE_TEST_CASE(dnsbl_listing_answers_with_the_template_at_mail, Fixture) {
    DnsblVerdict v;
    v.listed = true;
    v.reply = "Blocked: 192.0.2.1 in zen";
    v.summary = "zen=127.0.0.2*2";
    start(v);
    engine->onClientData("EHLO bot\r\nMAIL FROM:<a@b>\r\n");
    BOOST_TEST(host.out().find("550 5.7.1 Blocked: 192.0.2.1 in zen") != std::string::npos);
    BOOST_REQUIRE(host.signals.size() == 2u);
    BOOST_TEST(static_cast<int>(host.signals[1].first) == static_cast<int>(TrapSignal::Dnsbl));
    BOOST_TEST(host.signals[1].second == "zen=127.0.0.2*2");
}

BOOST_FIXTURE_TEST_CASE(dnsbl_decision_connect_leaves_mail_alone, Fixture) {
    config.dnsbl.decision = DnsblDecision::Connect;  // refused by the session at connect, not here
    DnsblVerdict v;
    v.listed = true;
    v.reply = "x";
    start(v);
    engine->onClientData("EHLO bot\r\nMAIL FROM:<a@b>\r\n");
    BOOST_TEST(host.out().find("530") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
