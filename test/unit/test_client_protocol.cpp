// ClientProtocol (the customer-side SMTP engine) driven through a recording fake host.
// TLS, SASL and the MSA are simulated by calling the engine's event entry points.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "wire/base64.h"
#include "engine/client_protocol.h"

namespace subproxy {
// Printable states for BOOST_TEST messages.
static std::ostream& operator<<(std::ostream& os, ClientProtocol::State state) {
    return os << "State(" << static_cast<int>(state) << ")";
}
}  // namespace subproxy

using namespace subproxy;

namespace {

// Records everything the engine asks of its host, and checks host-level invariants the engine
// must never break (nothing to a closed client, nothing to an MSA that is not open).
struct FakeHost : ClientProtocolHost {
    std::string client;    // all bytes sent to the client
    std::string upstream;  // all bytes sent to the MSA
    std::vector<std::string> events;  // ordered log: "client:…", "upstream:…", "startTls", …

    int startTlsCalls = 0;
    struct AuthStartCall {
        std::string mech;
        std::optional<std::string> initial;
    };
    std::vector<AuthStartCall> authStarts;
    std::vector<std::string> authSteps;
    int authCancels = 0;
    std::vector<UpstreamIdentity> opens;
    int aborts = 0;
    int closes = 0;
    std::string closeReason;
    int clientTimeout = -1;
    int upstreamTimeout = -1;
    std::vector<std::string> infos;
    std::vector<std::string> warnings;

    // Invariants.
    bool upstreamOpen_ = false;  // an upstreamOpen() not yet aborted
    int sendsAfterClose = 0;
    int upstreamSendsWhileClosed = 0;
    int opensWhileOpen = 0;

    std::size_t clientCursor = 0;
    std::size_t upstreamCursor = 0;

    void sendToClient(std::string_view bytes) override {
        if (closes > 0) {
            ++sendsAfterClose;
        }
        client.append(bytes.data(), bytes.size());
        events.push_back("client:" + std::string(bytes));
    }
    void startTls() override {
        ++startTlsCalls;
        events.push_back("startTls");
    }
    void authStart(const std::string& mechanism, const std::optional<std::string>& initial) override {
        authStarts.push_back({mechanism, initial});
        events.push_back("authStart:" + mechanism);
    }
    void authStep(const std::string& response) override {
        authSteps.push_back(response);
        events.push_back("authStep");
    }
    void authCancel() override {
        ++authCancels;
        events.push_back("authCancel");
    }
    void upstreamOpen(const UpstreamIdentity& identity) override {
        if (upstreamOpen_) {
            ++opensWhileOpen;
        }
        upstreamOpen_ = true;
        opens.push_back(identity);
        events.push_back("upstreamOpen");
    }
    void upstreamSend(std::string_view bytes) override {
        if (!upstreamOpen_ || closes > 0) {
            ++upstreamSendsWhileClosed;
        }
        upstream.append(bytes.data(), bytes.size());
        events.push_back("upstream:" + std::string(bytes));
    }
    void upstreamAbort() override {
        ++aborts;
        upstreamOpen_ = false;
        events.push_back("upstreamAbort");
    }
    void closeClient(const std::string& reason) override {
        ++closes;
        closeReason = reason;
        upstreamOpen_ = false;
        events.push_back("close:" + reason);
    }
    std::optional<EhloCaps> msaCapsKnown;  // what the probe learned; none: not yet
    const EhloCaps* knownMsaCaps() override { return msaCapsKnown ? &*msaCapsKnown : nullptr; }
    void setClientTimeout(int seconds) override { clientTimeout = seconds; }
    void setUpstreamTimeout(int seconds) override { upstreamTimeout = seconds; }
    void logInfo(const std::string& line) override { infos.push_back(line); }
    void logWarning(const std::string& line) override { warnings.push_back(line); }
    std::vector<std::string> accepted;  // messageAccepted(user): the migration report
    void messageAccepted(const std::string& user) override { accepted.push_back(user); }
    // The latency histograms' timing points ("authLine", "authAnswered:failure", "sent:mail").
    std::vector<std::string> timing;
    void authLineRead() override { timing.push_back("authLine"); }
    void authAnswered(AuthOutcome outcome) override {
        timing.push_back(std::string("authAnswered:") + kAuthOutcomes[static_cast<std::size_t>(outcome)]);
    }
    void upstreamCommandSent(const char* command) override { timing.push_back(std::string("sent:") + command); }
    // A real Metrics when a test asks for one (metricsOn), so the engine's counting is checked.
    std::optional<Metrics> counted;
    Metrics* metrics() override { return counted ? &*counted : nullptr; }

    // Client bytes since the previous call.
    std::string out() {
        std::string s = client.substr(clientCursor);
        clientCursor = client.size();
        return s;
    }
    // MSA bytes since the previous call.
    std::string up() {
        std::string s = upstream.substr(upstreamCursor);
        upstreamCursor = upstream.size();
        return s;
    }
    std::size_t indexOf(const std::string& event, std::size_t from = 0) const {
        for (std::size_t i = from; i < events.size(); ++i) {
            if (events[i] == event) {
                return i;
            }
        }
        return events.size();
    }
};

Config makeConfig() {
    Config c;
    c.hostname = "proxy.test";
    c.auth.backend = AuthBackend::Sasl;
    c.auth.mechanisms = {"PLAIN", "LOGIN", "CRAM-MD5"};
    c.upstream.login = UpstreamLogin::Xclient;
    return c;
}

ClientEndpoint makeEndpoint() {
    ClientEndpoint e;
    e.address = "192.0.2.10";
    e.port = 51234;
    e.destAddress = "198.51.100.1";
    e.destPort = 25;
    return e;
}

Reply msaReply(int code, std::vector<std::string> lines) {
    Reply r;
    r.code = code;
    r.lines = std::move(lines);
    return r;
}

EhloCaps msaCaps() {
    return parseEhloCaps({"msa.test", "PIPELINING", "SIZE 10240000", "CHUNKING", "XCLIENT NAME ADDR LOGIN",
                          "STARTTLS", "AUTH PLAIN LOGIN", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"});
}

AuthResult authDone(const std::string& user) {
    AuthResult r;
    r.status = AuthResult::Status::Done;
    r.username = user;
    return r;
}
AuthResult authMore(const std::string& challenge) {
    AuthResult r;
    r.status = AuthResult::Status::More;
    r.challenge = challenge;
    return r;
}
AuthResult authFail() {
    AuthResult r;
    r.status = AuthResult::Status::Fail;
    r.reason = "bad password";
    return r;
}
AuthResult authTemp() {
    AuthResult r;
    r.status = AuthResult::Status::Temp;
    r.reason = "backend down";
    return r;
}

std::string plainIr(const std::string& authzid, const std::string& user, const std::string& pass) {
    return encodeBase64(authzid + std::string(1, '\0') + user + std::string(1, '\0') + pass);
}

const std::string kGreeting = "220 proxy.test ESMTP\r\n";
const std::string kEhloPreTls = "250-proxy.test\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n";
const std::string kTlsRequired =
    "530 5.7.0 Must issue a STARTTLS command first: set your mail program to use port 587 with "
    "STARTTLS and your account password\r\n";
const std::string kAuthRequired =
    "530 5.7.0 Authentication required: set your mail program to use port 587 with STARTTLS and "
    "your account password\r\n";
const std::string kAuthFailed =
    "535 5.7.8 Error: authentication failed: check the user name and the account password set in "
    "your mail program\r\n";
// Backend "upstream": the MSA's own 535 goes through unchanged.
const std::string kMsaAuthFailed = "535 5.7.8 Error: authentication failed: authentication failure\r\n";

std::string ehloPostTls(const Config& c) {
    return "250-proxy.test\r\n250-PIPELINING\r\n250-SIZE " + std::to_string(c.limits.maxMessageSize) +
           "\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n"
           "250 AUTH=PLAIN LOGIN CRAM-MD5\r\n";
}

// One session: the Config lives as long as the engine that refers to it.
struct Session {
    Config cfg;
    FakeHost host;
    std::unique_ptr<ClientProtocol> p;

    explicit Session(Config c = makeConfig(), ClientEndpoint e = makeEndpoint()) : cfg(std::move(c)) {
        p = std::make_unique<ClientProtocol>(cfg, std::move(e), host);
    }
    void feed(std::string_view bytes) { p->onClientData(bytes); }
    std::string out() { return host.out(); }
    std::string up() { return host.up(); }

    void greet() {
        p->start();
        BOOST_REQUIRE_EQUAL(out(), kGreeting);
    }
    // Greeting, EHLO, STARTTLS, handshake.
    void toTls() {
        greet();
        feed("EHLO client.example\r\n");
        BOOST_REQUIRE_EQUAL(out(), kEhloPreTls);
        feed("STARTTLS\r\n");
        BOOST_REQUIRE_EQUAL(out(), "220 2.0.0 Ready to start TLS\r\n");
        BOOST_REQUIRE_EQUAL(host.startTlsCalls, 1);
        p->onTlsEstablished();
        BOOST_REQUIRE(p->tls());
        BOOST_REQUIRE_EQUAL(out(), "");
    }
    void toTlsEhlo() {
        toTls();
        feed("EHLO client.example\r\n");
        BOOST_REQUIRE_EQUAL(out(), ehloPostTls(cfg));
    }
    // TLS, EHLO, AUTH PLAIN user/pass, MSA ready, 235.
    void authenticate(const EhloCaps& caps = msaCaps()) {
        toTlsEhlo();
        feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
        BOOST_REQUIRE_EQUAL(host.authStarts.size(), 1u);
        p->onAuthResult(authDone("user"));
        BOOST_REQUIRE_EQUAL(host.opens.size(), 1u);
        BOOST_REQUIRE_EQUAL(out(), "");
        p->onUpstreamReady(caps);
        BOOST_REQUIRE_EQUAL(out(), "235 2.7.0 Authentication successful\r\n");
        BOOST_REQUIRE(p->authenticated());
        BOOST_REQUIRE_EQUAL(up(), "");
    }
    // MAIL/RCPT/DATA accepted, body mode.
    void openData() {
        feed("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        BOOST_REQUIRE_EQUAL(up(), "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
        p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));
        p->onUpstreamReply(msaReply(354, {"End data with <CR><LF>.<CR><LF>"}));
        BOOST_REQUIRE_EQUAL(out(), "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
        BOOST_REQUIRE(p->state() == ClientProtocol::State::DataBody);
    }
};

std::size_t count(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) {
        ++n;
    }
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(client_protocol)

// ---------------------------------------------------------------------------------------------
// Before TLS

BOOST_AUTO_TEST_CASE(greeting) {
    Session s;
    s.p->start();
    BOOST_TEST(s.out() == kGreeting);
    BOOST_TEST(s.host.startTlsCalls == 0);
    BOOST_TEST(s.host.clientTimeout == s.cfg.limits.greetingTimeout);
    BOOST_TEST(s.host.upstreamTimeout == 0);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
}

// Connection exhaustion (issue 8): shorter idle timeouts before AUTH for a session begun under
// stress, the usual ones once it has authenticated; the pre-AUTH deadline and shedding close.
BOOST_AUTO_TEST_CASE(stress_shortens_timeouts_until_auth) {
    Session s;
    s.cfg.limits.stressCommandTimeout = 7;
    s.p->setStress(true);
    s.p->start();
    BOOST_TEST(s.host.clientTimeout == 7);
    s.out();
    s.authenticate();
    BOOST_TEST(s.host.clientTimeout == s.cfg.limits.commandTimeout);
}

BOOST_AUTO_TEST_CASE(pre_auth_deadline_closes_unauthenticated_session) {
    Session s;
    s.p->start();
    s.out();
    s.p->onPreAuthDeadline(30);
    BOOST_TEST(s.out() == "421 4.4.2 proxy.test Error: timeout exceeded: log in within 30 seconds\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.host.closeReason == "pre-AUTH deadline");
}

BOOST_AUTO_TEST_CASE(pre_auth_deadline_spares_authenticated_session) {
    Session s;
    s.authenticate();
    s.p->onPreAuthDeadline(30);
    BOOST_TEST(s.out() == "");
    BOOST_TEST(s.host.closes == 0);
}

BOOST_AUTO_TEST_CASE(shed_session_gets_421) {
    Session s;
    s.p->start();
    s.out();
    s.p->onShed();
    BOOST_TEST(s.out() == "421 4.7.0 proxy.test Error: too many connections, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
}

BOOST_AUTO_TEST_CASE(implicit_tls_greets_after_handshake) {
    ClientEndpoint e = makeEndpoint();
    e.implicitTls = true;
    Session s(makeConfig(), e);
    s.p->start();
    BOOST_TEST(s.out() == "");
    BOOST_TEST(s.host.startTlsCalls == 1);
    BOOST_TEST(s.host.clientTimeout == s.cfg.limits.tlsHandshakeTimeout);
    s.p->onTlsEstablished();
    BOOST_TEST(s.out() == kGreeting);
    BOOST_TEST(s.p->tls());
    s.feed("EHLO client.example\r\n");
    BOOST_TEST(s.out() == ehloPostTls(s.cfg));
}

BOOST_AUTO_TEST_CASE(ehlo_before_tls_offers_starttls_not_auth) {
    Session s;
    s.greet();
    s.feed("EHLO client.example\r\n");
    const std::string r = s.out();
    BOOST_TEST(r == kEhloPreTls);
    BOOST_TEST(r.find("AUTH") == std::string::npos);
    BOOST_TEST(s.p->helo() == "client.example");
    s.feed("HELO client.example\r\n");
    BOOST_TEST(s.out() == "250 proxy.test\r\n");
    s.feed("EHLO\r\n");
    BOOST_TEST(s.out() == "501 5.5.4 Syntax: EHLO hostname\r\n");
}

BOOST_AUTO_TEST_CASE(auth_mail_rcpt_data_before_tls_get_530) {
    Session s;
    s.greet();
    s.feed("EHLO client.example\r\n");
    s.out();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    BOOST_TEST(s.out() == kTlsRequired);
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == kTlsRequired);
    s.feed("RCPT TO:<c@d>\r\n");
    BOOST_TEST(s.out() == kTlsRequired);
    s.feed("DATA\r\n");
    BOOST_TEST(s.out() == kTlsRequired);
    // Credentials ignored, nothing upstream.
    BOOST_TEST(s.host.authStarts.empty());
    BOOST_TEST(s.host.opens.empty());
    BOOST_TEST(s.host.upstream == "");
    // NOOP/RSET are fine before TLS.
    s.feed("NOOP\r\nRSET\r\n");
    BOOST_TEST(s.out() == "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
}

BOOST_AUTO_TEST_CASE(quit_before_tls) {
    Session s;
    s.greet();
    s.feed("QUIT\r\n");
    BOOST_TEST(s.out() == "221 2.0.0 Bye\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Closed);
    s.feed("NOOP\r\n");  // after close: ignored
    BOOST_TEST(s.out() == "");
    BOOST_TEST(s.host.sendsAfterClose == 0);
}

// ---------------------------------------------------------------------------------------------
// STARTTLS

BOOST_AUTO_TEST_CASE(starttls_pipelined_injection_closes) {
    Session s;
    s.greet();
    s.feed("EHLO a\r\n");
    s.out();
    s.feed("STARTTLS\r\nEHLO x\r\n");
    BOOST_TEST(s.out() == "554 5.5.0 Error: command pipelined after STARTTLS\r\n");
    BOOST_TEST(s.host.startTlsCalls == 0);
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Closed);
    BOOST_TEST(!s.host.warnings.empty());
    // A late handshake completion does not resurrect anything.
    s.p->onTlsEstablished();
    BOOST_TEST(s.out() == "");
    BOOST_TEST(!s.p->tls());
}

BOOST_AUTO_TEST_CASE(starttls_with_argument_is_501) {
    Session s;
    s.greet();
    s.feed("STARTTLS now\r\n");
    BOOST_TEST(s.out() == "501 5.5.4 Syntax: STARTTLS\r\n");
    BOOST_TEST(s.host.startTlsCalls == 0);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
}

BOOST_AUTO_TEST_CASE(starttls_resets_state) {
    Session s;
    s.toTls();
    BOOST_TEST(s.p->helo() == "");
    BOOST_TEST(s.host.clientTimeout == s.cfg.limits.greetingTimeout);  // no EHLO seen any more
    // AUTH needs a fresh EHLO.
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    BOOST_TEST(s.out() == "503 5.5.1 Error: send EHLO first\r\n");
    BOOST_TEST(s.host.authStarts.empty());
    // Second STARTTLS.
    s.feed("STARTTLS\r\n");
    BOOST_TEST(s.out() == "503 5.5.1 Error: TLS already active\r\n");
    BOOST_TEST(s.host.startTlsCalls == 1);
    // EHLO after TLS: AUTH advertised, STARTTLS not.
    s.feed("EHLO client.example\r\n");
    const std::string ehlo = s.out();
    BOOST_TEST(ehlo == ehloPostTls(s.cfg));
    BOOST_TEST(ehlo.find("STARTTLS") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(mail_after_tls_without_ehlo_is_refused) {
    // What the code does today: the AUTH gate (530) comes before any EHLO check.
    Session s;
    s.toTls();
    s.feed("MAIL FROM:<a@b>\r\n");
    const std::string r = s.out();
    BOOST_TEST((r.rfind("530 5.7.0 ", 0) == 0 || r.rfind("503 5.5.1 ", 0) == 0));
    BOOST_TEST(s.host.upstream == "");
    BOOST_TEST(s.host.opens.empty());
}

BOOST_AUTO_TEST_CASE(checklist6_mail_after_tls_without_ehlo_is_503) {
    // Security checklist row 6: pre-TLS EHLO, then TLS, then MAIL -> 503 5.5.1 (no EHLO).
    Session s;
    s.toTls();
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out().rfind("503 5.5.1 ", 0) == 0u);
}

// ---------------------------------------------------------------------------------------------
// AUTH (backend sasl)

BOOST_AUTO_TEST_CASE(mail_without_auth_uses_configured_text) {
    Config c = makeConfig();
    c.replies.authRequired = "Use port 587 and your password";
    Session s(c);
    s.toTlsEhlo();
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == "530 5.7.0 Use port 587 and your password\r\n");
    s.feed("RCPT TO:<c@d>\r\nDATA\r\n");
    BOOST_TEST(s.out() == "530 5.7.0 Use port 587 and your password\r\n530 5.7.0 Use port 587 and your password\r\n");
    BOOST_TEST(s.host.upstream == "");
    BOOST_TEST(s.host.opens.empty());
}

BOOST_AUTO_TEST_CASE(mail_without_auth_default_text) {
    Session s;
    s.toTlsEhlo();
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == kAuthRequired);
}

BOOST_AUTO_TEST_CASE(auth_unknown_mechanism_504) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH GSSAPI\r\n");
    BOOST_TEST(s.out() ==
               "504 5.5.4 Unsupported authentication mechanism: set your mail program to use a normal "
               "password (PLAIN LOGIN CRAM-MD5)\r\n");
    s.feed("AUTH\r\n");
    BOOST_TEST(s.out() == "501 5.5.4 Syntax: AUTH mechanism\r\n");
    BOOST_TEST(s.host.authStarts.empty());
}

BOOST_AUTO_TEST_CASE(auth_bad_base64_initial_501) {
    Session s;
    s.toTlsEhlo();
    for (const char* bad : {"AUTH PLAIN AHVz ZXI=", "AUTH PLAIN =AAA", "AUTH PLAIN AAA=BBB", "AUTH PLAIN !!!!"}) {
        BOOST_TEST_INFO(bad);
        s.feed(std::string(bad) + "\r\n");
        BOOST_TEST(s.out() == "501 5.5.2 Error: invalid base64 data\r\n");
    }
    BOOST_TEST(s.host.authStarts.empty());
    BOOST_TEST(s.p->counters().authFailures == 0u);
}

BOOST_AUTO_TEST_CASE(auth_equals_is_empty_initial_response) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN =\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authStarts.size(), 1u);
    BOOST_TEST(s.host.authStarts[0].mech == "LOGIN");
    BOOST_TEST(s.host.authStarts[0].initial.has_value());
    BOOST_TEST(*s.host.authStarts[0].initial == "");
    BOOST_TEST(s.out() == "");
    // Without an initial response, the backend gets nullopt.
    Session t;
    t.toTlsEhlo();
    t.feed("AUTH LOGIN\r\n");
    BOOST_REQUIRE_EQUAL(t.host.authStarts.size(), 1u);
    BOOST_TEST(!t.host.authStarts[0].initial.has_value());
}

BOOST_AUTO_TEST_CASE(cram_md5_with_initial_response_501) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH CRAM-MD5 dXNlcg==\r\n");
    BOOST_TEST(s.out() == "501 5.7.0 Error: CRAM-MD5 takes no initial response\r\n");
    BOOST_TEST(s.host.authStarts.empty());
}

BOOST_AUTO_TEST_CASE(star_at_334_cancels) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onAuthResult(authMore("Username:"));
    BOOST_TEST(s.out() == "334 VXNlcm5hbWU6\r\n");
    s.feed("*\r\n");
    BOOST_TEST(s.out() == "501 5.0.0 Authentication aborted\r\n");
    BOOST_TEST(s.host.authCancels == 1);
    BOOST_TEST(s.host.authSteps.empty());
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
    BOOST_TEST(!s.p->authenticated());
    // A late result of the cancelled step is ignored.
    s.p->onAuthResult(authDone("user"));
    BOOST_TEST(s.host.opens.empty());
    BOOST_TEST(!s.p->authenticated());
}

BOOST_AUTO_TEST_CASE(bad_base64_at_334_is_501) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onAuthResult(authMore("Username:"));
    s.out();
    s.feed("dXNl cg==\r\n");
    BOOST_TEST(s.out() == "501 5.5.2 Error: invalid base64 data\r\n");
    BOOST_TEST(s.host.authCancels == 1);
    BOOST_TEST(s.host.authSteps.empty());
}

BOOST_AUTO_TEST_CASE(auth_response_too_long_500_5_5_6) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onAuthResult(authMore("Username:"));
    s.out();
    s.feed(std::string(static_cast<std::size_t>(s.cfg.limits.authLineLength) + 10, 'A') + "\r\n");
    BOOST_TEST(s.out() == "500 5.5.6 SASL response limit exceeded\r\n");
    BOOST_TEST(s.host.authCancels == 1);
    BOOST_TEST(s.host.authSteps.empty());
    s.feed("NOOP\r\n");  // in sync afterwards
    BOOST_TEST(s.out() == "250 2.0.0 Ok\r\n");
}

BOOST_AUTO_TEST_CASE(auth_failure_535) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authStarts.size(), 1u);
    BOOST_TEST(*s.host.authStarts[0].initial == std::string("\0user\0wrong", 11));
    s.p->onAuthResult(authFail());
    BOOST_TEST(s.out() == kAuthFailed);
    BOOST_TEST(!s.p->authenticated());
    BOOST_TEST(s.p->counters().authFailures == 1u);
    BOOST_TEST(s.host.opens.empty());
    // MAIL after a failed AUTH: 530, nothing upstream (checklist row 22).
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == kAuthRequired);
    BOOST_TEST(s.host.upstream == "");
    // Password never logged.
    for (const auto& l : s.host.infos) {
        BOOST_TEST(l.find("wrong") == std::string::npos);
    }
    for (const auto& l : s.host.warnings) {
        BOOST_TEST(l.find("wrong") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(auth_temporary_failure_454) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onAuthResult(authTemp());
    BOOST_TEST(s.out() == "454 4.7.0 Temporary authentication failure, try again later\r\n");
    BOOST_TEST(s.p->counters().authFailures == 0u);
    BOOST_TEST(!s.p->authenticated());
}

BOOST_AUTO_TEST_CASE(max_auth_failures_421) {
    Session s;
    s.toTlsEhlo();
    BOOST_REQUIRE_EQUAL(s.cfg.limits.maxAuthFailures, 3);
    for (int i = 0; i < 2; ++i) {
        s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
        s.p->onAuthResult(authFail());
        BOOST_TEST(s.out() == kAuthFailed);
        BOOST_TEST(s.host.closes == 0);
    }
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    s.p->onAuthResult(authFail());
    BOOST_TEST(s.out() == kAuthFailed + "421 4.7.0 proxy.test Error: too many failed authentications\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Closed);
}

BOOST_AUTO_TEST_CASE(second_auth_after_success_503) {
    Session s;
    s.authenticate();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    BOOST_TEST(s.out() == "503 5.5.1 Error: already authenticated\r\n");
    BOOST_TEST(s.host.authStarts.size() == 1u);
    BOOST_TEST(s.host.upstream == "");
    // Inside a transaction, too.
    s.feed("MAIL FROM:<a@b>\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.out();
    s.up();
    s.feed("AUTH LOGIN\r\n");
    BOOST_TEST(s.out() == "503 5.5.1 Error: already authenticated\r\n");
    BOOST_TEST(s.up() == "");
}

BOOST_AUTO_TEST_CASE(plain_authzid_mismatch_535_without_backend) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("admin", "user", "pass") + "\r\n");
    BOOST_TEST(s.out() == kAuthFailed);
    BOOST_TEST(s.host.authStarts.empty());
    BOOST_TEST(s.p->counters().authFailures == 1u);
    // authzid equal to authcid is fine.
    s.feed("AUTH PLAIN " + plainIr("user", "user", "pass") + "\r\n");
    BOOST_TEST(s.host.authStarts.size() == 1u);
    BOOST_TEST(s.out() == "");
}

BOOST_AUTO_TEST_CASE(plain_malformed_535) {
    Session s;
    s.toTlsEhlo();
    // One NUL, three NULs, empty password.
    s.feed("AUTH PLAIN " + encodeBase64(std::string("user\0pass", 9)) + "\r\n");
    BOOST_TEST(s.out() == kAuthFailed);
    s.feed("AUTH PLAIN " + encodeBase64(std::string("\0user\0pass\0", 11)) + "\r\n");
    BOOST_TEST(s.out() == kAuthFailed);
    BOOST_TEST(s.host.authStarts.empty());
}

BOOST_AUTO_TEST_CASE(auth_login_flow) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authStarts.size(), 1u);
    BOOST_TEST(s.host.authStarts[0].mech == "LOGIN");
    BOOST_TEST(s.p->state() == ClientProtocol::State::AuthBackend);
    s.p->onAuthResult(authMore("Username:"));
    BOOST_TEST(s.out() == "334 VXNlcm5hbWU6\r\n");
    BOOST_TEST(s.p->state() == ClientProtocol::State::AuthResponse);
    s.feed(encodeBase64("user") + "\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authSteps.size(), 1u);
    BOOST_TEST(s.host.authSteps[0] == "user");
    s.p->onAuthResult(authMore("Password:"));
    BOOST_TEST(s.out() == "334 UGFzc3dvcmQ6\r\n");
    s.feed(encodeBase64("pass") + "\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authSteps.size(), 2u);
    BOOST_TEST(s.host.authSteps[1] == "pass");
    s.p->onAuthResult(authDone("user"));
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    BOOST_TEST(s.host.opens[0].login == "user");
    BOOST_TEST(s.out() == "");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.out() == "235 2.7.0 Authentication successful\r\n");
    BOOST_TEST(s.p->authenticated());
}

// RFC 4954 §4: an empty challenge is "334" SP.  A client shipped with Debian splits the line
// on the space and failed AUTH PLAIN (no initial response) against "334" alone.
BOOST_AUTO_TEST_CASE(empty_challenge_is_334_space) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authStarts.size(), 1u);
    BOOST_TEST(!s.host.authStarts[0].initial.has_value());
    s.p->onAuthResult(authMore(""));
    BOOST_TEST(s.out() == "334 \r\n");
    s.feed(plainIr("", "user", "pass") + "\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authSteps.size(), 1u);
    s.p->onAuthResult(authDone("user"));
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.out() == "235 2.7.0 Authentication successful\r\n");
}

BOOST_AUTO_TEST_CASE(auth_success_opens_upstream_then_235) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onAuthResult(authDone("user@example.com"));
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    const UpstreamIdentity& id = s.host.opens[0];
    BOOST_TEST(id.login == "user@example.com");
    BOOST_TEST(id.helo == "client.example");
    BOOST_TEST(id.client.address == "192.0.2.10");
    BOOST_TEST(id.client.port == 51234);
    BOOST_TEST(id.client.destAddress == "198.51.100.1");
    BOOST_TEST(id.client.destPort == 25);
    BOOST_TEST(id.password == "");  // xclient: the password is not kept
    BOOST_TEST(s.p->state() == ClientProtocol::State::UpstreamOpening);
    BOOST_TEST(!s.p->authenticated());
    BOOST_TEST(s.out() == "");  // no 235 before the MSA is ready
    // Input pipelined meanwhile waits.
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == "");
    BOOST_TEST(s.host.upstream == "");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.out() == "235 2.7.0 Authentication successful\r\n");
    BOOST_TEST(s.p->authenticated());
    BOOST_TEST(s.p->user() == "user@example.com");
    BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.host.indexOf("upstreamOpen") < s.host.indexOf("client:235 2.7.0 Authentication successful\r\n"));
}

BOOST_AUTO_TEST_CASE(replay_keeps_password_for_upstream) {
    Config c = makeConfig();
    c.upstream.login = UpstreamLogin::Replay;
    c.auth.mechanisms = {"PLAIN", "LOGIN"};
    Session s(c);
    s.toTls();
    s.feed("EHLO client.example\r\n");
    s.out();
    s.feed("AUTH PLAIN " + plainIr("", "user", "secret") + "\r\n");
    s.p->onAuthResult(authDone("user"));
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    BOOST_TEST(s.host.opens[0].login == "user");
    BOOST_TEST(s.host.opens[0].password == "secret");
}

BOOST_AUTO_TEST_CASE(upstream_failure_while_opening_454) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onAuthResult(authDone("user"));
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    s.p->onUpstreamFailed(UpstreamFailure::Connect, "connection refused");
    BOOST_TEST(s.out() ==
               "454 4.7.0 Temporary authentication failure: mail server unavailable, try again later\r\n");
    BOOST_TEST(!s.p->authenticated());
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
    BOOST_TEST(s.host.closes == 0);
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == kAuthRequired);
    BOOST_TEST(s.host.upstream == "");
    // A late ready is ignored.
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(!s.p->authenticated());
    BOOST_TEST(s.out() == "");
}

// ---------------------------------------------------------------------------------------------
// Relay

BOOST_AUTO_TEST_CASE(relay_pipelined_transaction) {
    Session s;
    s.authenticate();
    const std::string body = "Subject: x\r\n\r\n..dot\r\n";
    // Everything in one segment, body included: nothing after DATA may leave before the 354.
    s.feed("MAIL FROM:<a@b> AUTH=<>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + body + ".\r\n");
    BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    BOOST_TEST(s.out() == "");
    BOOST_TEST(s.host.upstreamTimeout == s.cfg.upstream.replyTimeout);
    BOOST_TEST(s.host.clientTimeout == 0);
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    BOOST_TEST(s.out() == "250 2.1.0 Ok\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));
    BOOST_TEST(s.out() == "250 2.1.5 Ok\r\n");
    BOOST_TEST(s.up() == "");
    s.p->onUpstreamReply(msaReply(354, {"End data with <CR><LF>.<CR><LF>"}));
    BOOST_TEST(s.out() == "354 End data with <CR><LF>.<CR><LF>\r\n");
    BOOST_TEST(s.up() == body + ".\r\n");
    BOOST_TEST(s.host.upstreamTimeout == s.cfg.upstream.dataDoneTimeout);
    BOOST_TEST(s.out() == "");  // never a 250 before the MSA's
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued as ABC"}));
    BOOST_TEST(s.out() == "250 2.0.0 Ok: queued as ABC\r\n");
    BOOST_TEST(s.p->counters().messages == 1u);
    BOOST_TEST(s.host.upstreamTimeout == 0);
    BOOST_TEST(s.host.clientTimeout == s.cfg.limits.commandTimeout);
}

// Old mail programs write paths without angle brackets (Postfix takes them); the MSA gets the
// canonical form.  A RCPT we cannot read goes as sent: the MSA judges it, in order.
BOOST_AUTO_TEST_CASE(relay_paths_in_canonical_form) {
    Session s;
    s.authenticate();
    s.feed("MAIL FROM:alice@example.org SIZE=100\r\nRCPT TO:bob@x\r\nRCPT TO: <carol@x> NOTIFY=NEVER\r\n"
           "RCPT TO: dave@x\r\n");
    BOOST_TEST(s.up() == "MAIL FROM:<alice@example.org> SIZE=100\r\nRCPT TO:<bob@x>\r\n"
                         "RCPT TO:<carol@x> NOTIFY=NEVER\r\nRCPT TO:<dave@x>\r\n");
    s.feed("RSET\r\nMAIL FROM: <a@b>\r\nRCPT TO:Bob <bob@x>\r\n");
    BOOST_TEST(s.up() == "RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:Bob <bob@x>\r\n");
    BOOST_TEST(s.out() == "");
}

BOOST_AUTO_TEST_CASE(relay_body_streams_after_354) {
    Session s;
    s.authenticate();
    s.openData();
    BOOST_TEST(s.host.clientTimeout == s.cfg.limits.dataTimeout);
    s.feed("Subject: x\r\n");
    s.feed("\r\n..dot\r\n");
    s.feed(".\r\n");
    BOOST_TEST(s.up() == "Subject: x\r\n\r\n..dot\r\n.\r\n");
    BOOST_TEST(s.out() == "");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued as ABC"}));
    BOOST_TEST(s.out() == "250 2.0.0 Ok: queued as ABC\r\n");
    // Multi-line and rejecting end-of-data replies pass through as they are.
    s.openData();
    s.feed("x\r\n.\r\n");
    BOOST_TEST(s.up() == "x\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(554, {"5.7.1 Rejected", "5.7.1 by policy"}));
    BOOST_TEST(s.out() == "554-5.7.1 Rejected\r\n554 5.7.1 by policy\r\n");
    BOOST_TEST(s.p->counters().rejected == 1u);
}

BOOST_AUTO_TEST_CASE(relay_rejections_pass_through) {
    Session s;
    s.authenticate();
    s.feed("MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<c@d>\r\nNOOP\r\nRSET\r\n");
    BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<c@d>\r\nNOOP\r\nRSET\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.p->onUpstreamReply(msaReply(550, {"5.1.1 <x@y>: Recipient address rejected"}));
    s.p->onUpstreamReply(msaReply(451, {"4.3.0 try later"}));
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    BOOST_TEST(s.out() == "250 2.1.0 Ok\r\n550 5.1.1 <x@y>: Recipient address rejected\r\n451 4.3.0 try later\r\n"
                          "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
}

BOOST_AUTO_TEST_CASE(relay_quit_closes_after_msa_reply) {
    Session s;
    s.authenticate();
    s.feed("QUIT\r\nNOOP\r\n");
    BOOST_TEST(s.up() == "QUIT\r\n");
    BOOST_TEST(s.host.closes == 0);
    s.p->onUpstreamReply(msaReply(221, {"2.0.0 Bye"}));
    BOOST_TEST(s.out() == "221 2.0.0 Bye\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.up() == "");
}

BOOST_AUTO_TEST_CASE(data_refused_by_msa_keeps_commands) {
    Session s;
    s.authenticate();
    s.feed("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.up();
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.p->onUpstreamReply(msaReply(550, {"5.1.1 no"}));
    s.p->onUpstreamReply(msaReply(554, {"5.5.1 Error: no valid recipients"}));
    BOOST_TEST(s.out() == "250 2.1.0 Ok\r\n550 5.1.1 no\r\n554 5.5.1 Error: no valid recipients\r\n");
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
    s.feed("RSET\r\n");
    BOOST_TEST(s.up() == "RSET\r\n");
}

// ---------------------------------------------------------------------------------------------
// Smuggling and limits

namespace {

void smuggle(const std::string& badSequence) {
    BOOST_TEST_CONTEXT("sequence " << [&] {
        std::string shown;
        for (char ch : badSequence) {
            shown += ch == '\r' ? "\\r" : ch == '\n' ? "\\n" : std::string(1, ch);
        }
        return shown;
    }()) {
        Session s;
        s.authenticate();
        s.openData();
        s.feed("Subject: x\r\n\r\nhello" + badSequence + "MAIL FROM:<evil>\r\nRCPT TO:<victim@x>\r\nDATA\r\n");
        BOOST_TEST(s.host.aborts == 1);
        BOOST_TEST(s.out() == "");
        s.feed("more\r\n.\r\n");
        BOOST_TEST(s.out() == "550 5.5.2 Error: bare <CR> or <LF> in message body; the message was not sent\r\n");
        const std::string up = s.up();
        BOOST_TEST(up.find("MAIL") == std::string::npos);
        BOOST_TEST(up.find("evil") == std::string::npos);
        BOOST_TEST(count(s.host.upstream, "MAIL FROM") == 1u);
        BOOST_TEST(s.host.upstreamSendsWhileClosed == 0);
        // A new MSA session for what comes next; no 235 this time.
        BOOST_REQUIRE_EQUAL(s.host.opens.size(), 2u);
        BOOST_TEST(s.host.opens[1].login == "user");
        BOOST_TEST(s.p->state() == ClientProtocol::State::UpstreamOpening);
        s.feed("MAIL FROM:<a@b>\r\n");
        BOOST_TEST(s.up() == "");
        s.p->onUpstreamReady(msaCaps());
        BOOST_TEST(s.out() == "");
        BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\n");
        BOOST_TEST(s.p->counters().rejected == 1u);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(smuggling_lf_dot_lf) { smuggle("\n.\n"); }
BOOST_AUTO_TEST_CASE(smuggling_crlf_dot_lf) { smuggle("\r\n.\n"); }
BOOST_AUTO_TEST_CASE(smuggling_cr_dot_crlf) { smuggle("\r.\r\n"); }
BOOST_AUTO_TEST_CASE(smuggling_lf_dot_crlf) { smuggle("\n.\r\n"); }
BOOST_AUTO_TEST_CASE(smuggling_cr_dot_cr) { smuggle("\r.\r"); }

BOOST_AUTO_TEST_CASE(size_parameter_over_limit_552) {
    Config c = makeConfig();
    c.limits.maxMessageSize = 1000;
    Session s(c);
    s.authenticate();
    s.feed("MAIL FROM:<a@b> SIZE=1001\r\n");
    BOOST_TEST(s.out() == "552 5.3.4 Error: message size exceeds fixed limit\r\n");
    BOOST_TEST(s.up() == "");
    s.feed("MAIL FROM:<a@b> SIZE=1000\r\n");
    BOOST_TEST(s.up() == "MAIL FROM:<a@b> SIZE=1000\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.feed("RSET\r\nMAIL FROM:<a@b> SIZE=abc\r\n");
    BOOST_TEST(s.up() == "RSET\r\n");
    BOOST_TEST(s.out() == "250 2.1.0 Ok\r\n");  // the 501 waits for RSET's reply (RFC 2920)
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    BOOST_TEST(s.out() == "250 2.0.0 Ok\r\n501 5.5.4 Error: bad SIZE parameter\r\n");
}

BOOST_AUTO_TEST_CASE(body_over_limit_aborts_and_552) {
    Config c = makeConfig();
    c.limits.maxMessageSize = 100;
    Session s(c);
    s.authenticate();
    s.openData();
    s.feed("Subject: x\r\n\r\n");
    BOOST_TEST(s.up() == "Subject: x\r\n\r\n");
    for (int i = 0; i < 5; ++i) {
        s.feed(std::string(40, 'a') + "\r\n");
    }
    BOOST_TEST(s.host.aborts == 1);
    BOOST_TEST(s.out() == "");
    s.feed(".\r\n");
    BOOST_TEST(s.out() == "552 5.3.4 Error: message size exceeds fixed limit\r\n");
    const std::string up = s.up();
    BOOST_TEST(up.find(".\r\n") != 0u);             // no terminator sent upstream
    BOOST_TEST(up.find("\r\n.\r\n") == std::string::npos);
    BOOST_TEST(s.host.upstreamSendsWhileClosed == 0);
    BOOST_TEST(s.host.opens.size() == 2u);  // reopened for the next message
}

BOOST_AUTO_TEST_CASE(nul_in_body_554) {
    Session s;
    s.authenticate();
    s.openData();
    s.feed(std::string("a\0b\r\n.\r\n", 8));
    BOOST_TEST(s.host.aborts == 1);
    BOOST_TEST(s.out() == "554 5.6.0 Error: NUL character in message body; the message was not sent\r\n");
}

// ---------------------------------------------------------------------------------------------
// MSA failures

BOOST_AUTO_TEST_CASE(msa_fails_after_dot_451_then_421) {
    Session s;
    s.authenticate();
    s.openData();
    s.feed("hello\r\n.\r\n");
    BOOST_TEST(s.up() == "hello\r\n.\r\n");
    s.p->onUpstreamFailed(UpstreamFailure::Lost, "connection reset");
    BOOST_TEST(s.out() == "451 4.4.2 Error: no reply from the mail server after end of data; try again later\r\n"
                          "421 4.4.2 proxy.test Error: lost connection to the mail server, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.p->counters().messages == 0u);
    BOOST_TEST(s.out().find("250") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(msa_timeout_after_dot_451) {
    Session s;
    s.authenticate();
    s.openData();
    s.feed("hello\r\n.\r\n");
    BOOST_TEST(s.host.upstreamTimeout == s.cfg.upstream.dataDoneTimeout);
    s.p->onUpstreamFailed(UpstreamFailure::Timeout, "timeout");
    BOOST_TEST(s.out().rfind("451 4.4.2 ", 0) == 0u);
    BOOST_TEST(s.host.closes == 1);
}

BOOST_AUTO_TEST_CASE(msa_fails_during_body_451_at_end) {
    Session s;
    s.authenticate();
    s.openData();
    s.feed("line one\r\n");
    BOOST_TEST(s.up() == "line one\r\n");
    s.p->onUpstreamFailed(UpstreamFailure::Lost, "connection reset");
    BOOST_TEST(s.out() == "");  // the customer reads no replies while sending the body
    BOOST_TEST(s.host.closes == 0);
    s.feed("line two\r\n.\r\n");
    BOOST_TEST(s.out() == "451 4.4.2 Error: connection to the mail server lost; the message was not sent, try again\r\n"
                          "421 4.4.2 proxy.test Error: closing connection\r\n");
    BOOST_TEST(s.up() == "");
    BOOST_TEST(s.host.closes == 1);
}

BOOST_AUTO_TEST_CASE(msa_fails_idle_421) {
    Session s;
    s.authenticate();
    s.p->onUpstreamFailed(UpstreamFailure::Lost, "eof");
    BOOST_TEST(s.out() == "421 4.4.2 proxy.test Error: lost connection to the mail server, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
}

BOOST_AUTO_TEST_CASE(client_gone_mid_data_aborts_upstream) {
    Session s;
    s.authenticate();
    s.openData();
    s.feed("partial body\r\n");
    s.up();
    s.p->onClientGone("eof");
    BOOST_TEST(s.host.aborts == 1);
    BOOST_TEST(s.up() == "");  // no terminator
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.host.indexOf("upstreamAbort") < s.host.indexOf("close:eof"));
}

BOOST_AUTO_TEST_CASE(client_gone_after_dot_waits_for_msa) {
    Session s;
    s.authenticate();
    s.openData();
    s.feed("body\r\n.\r\n");
    s.up();
    s.out();
    s.p->onClientGone("eof");
    BOOST_TEST(s.host.aborts == 0);
    BOOST_TEST(s.host.closes == 0);
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued as XYZ"}));
    BOOST_TEST(s.out() == "");  // nobody to tell
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.host.aborts == 0);
    BOOST_TEST(s.p->counters().messages == 1u);
    bool logged = false;
    for (const auto& l : s.host.infos) {
        logged = logged || l.find("queued as XYZ") != std::string::npos;
    }
    BOOST_TEST(logged);
}

// The line "who still sends through port 25?" is answered from: our fields (the account, the
// dialled port, the MSA's queue id) before the customer's own text, which may look like them.
BOOST_AUTO_TEST_CASE(message_line_names_the_account_the_dialled_port_and_the_queue_id) {
    Session s;
    s.authenticate();
    const std::string sender = "\"x sasl_username=bob dialled_port=587\"@example.com";
    s.feed("MAIL FROM:<" + sender + ">\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));
    s.p->onUpstreamReply(msaReply(354, {"End data with <CR><LF>.<CR><LF>"}));
    s.feed("body\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued as 4Tx1Yk2zQbz9sXd"}));
    s.feed("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));
    s.p->onUpstreamReply(msaReply(354, {"End data with <CR><LF>.<CR><LF>"}));
    s.feed("body\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(554, {"5.7.1 Rejected: spam"}));
    std::vector<std::string> lines;
    for (const auto& l : s.host.infos) {
        if (l.rfind("message ", 0) == 0) {
            lines.push_back(l);
        }
    }
    BOOST_REQUIRE_EQUAL(lines.size(), 2u);
    BOOST_TEST(lines[0] == "message sasl_username=user dialled_port=25 status=sent queue_id=4Tx1Yk2zQbz9sXd from=<" +
                               sender + "> nrcpt=1 size=6 reply=\"2.0.0 Ok: queued as 4Tx1Yk2zQbz9sXd\"");
    BOOST_TEST(lines[1] == "message sasl_username=user dialled_port=25 status=rejected from=<a@b> nrcpt=1 size=6 "
                           "reply=\"5.7.1 Rejected: spam\"");
}

BOOST_AUTO_TEST_CASE(mail_without_auth_is_logged_before_starttls_too) {
    Session s;
    s.greet();
    s.feed("EHLO bot.example\r\nMAIL FROM:<spam@example.com>\r\n");
    BOOST_TEST(s.out() == kEhloPreTls + kTlsRequired);
    BOOST_TEST(std::count(s.host.infos.begin(), s.host.infos.end(),
                          "MAIL without AUTH refused before STARTTLS, helo=bot.example") == 1);
    Session t;
    t.toTlsEhlo();
    t.feed("MAIL FROM:<spam@example.com>\r\n");
    BOOST_TEST(t.out() == kAuthRequired);
    BOOST_TEST(std::count(t.host.infos.begin(), t.host.infos.end(),
                          "MAIL without AUTH refused, helo=client.example") == 1);
}

BOOST_AUTO_TEST_CASE(unsolicited_upstream_reply_421) {
    Session s;
    s.authenticate();
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 surprise"}));
    BOOST_TEST(s.out() == "421 4.4.2 proxy.test Error: mail server out of sync, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Closed);
}

BOOST_AUTO_TEST_CASE(extra_upstream_reply_after_pending_421) {
    Session s;
    s.authenticate();
    s.feed("NOOP\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    BOOST_TEST(s.out() == "250 2.0.0 Ok\r\n421 4.4.2 proxy.test Error: mail server out of sync, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
}

// Issue 8: an extra reply while commands are pending shifts every later reply; the first
// reply that cannot answer its command (here a 250 where DATA's 354 is owed) ends both sides
// before the customer is told "250" to DATA.
BOOST_AUTO_TEST_CASE(shifted_replies_never_answer_data_with_250) {
    Session s;
    s.authenticate();
    s.feed("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 injected"}));  // taken for RCPT's
    s.p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));        // RCPT's real one, where 354 is owed
    BOOST_TEST(s.out() == "250 2.1.0 Ok\r\n250 2.0.0 injected\r\n"
                          "421 4.4.2 proxy.test Error: mail server out of sync, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.host.aborts == 1);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Closed);
}

// RFC 2920: a command answered by the proxy itself (502 to VRFY) behind relayed ones waits for
// their replies, so the customer can match replies to commands by position.
BOOST_AUTO_TEST_CASE(local_replies_keep_pipelined_order) {
    Session s;
    s.authenticate();
    s.feed("MAIL FROM:<a@b>\r\nVRFY x\r\nRCPT TO:<c@d>\r\nEXPN y\r\n");
    BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    BOOST_TEST(s.out() == "");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    const std::string afterMail = s.out();
    BOOST_TEST(afterMail.rfind("250 2.1.0 Ok\r\n502 ", 0) == 0);
    s.p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));
    const std::string afterRcpt = s.out();
    BOOST_TEST(afterRcpt.rfind("250 2.1.5 Ok\r\n502 ", 0) == 0);
    s.feed("NOOP\r\n");  // nothing pending: relayed, answered by the MSA
    BOOST_TEST(s.up() == "NOOP\r\n");
}

// The replies held for order are bounded: a customer streaming locally answered commands
// behind a relayed one while not reading stops being read (its input waits), instead of
// growing the held replies without end.
BOOST_AUTO_TEST_CASE(held_replies_are_bounded) {
    Session s;
    s.authenticate();
    std::string flood = "MAIL FROM:<a@b>\r\n";
    for (int i = 0; i < 5000; ++i) {
        flood += "HELP\r\n";  // answered here, and not an error
    }
    s.feed(flood);
    BOOST_TEST(s.out() == "");
    BOOST_TEST(s.p->bufferedInput() > 5000u);  // not processed: waits for the MSA
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    const std::string out = s.out();
    BOOST_TEST(out.rfind("250 2.1.0 Ok\r\n214", 0) == 0);
    BOOST_TEST(count(out, "214") > 100u);  // the rest answered once nothing is owed any more
    BOOST_TEST(s.p->bufferedInput() == 0u);
}

BOOST_AUTO_TEST_CASE(reply_plausibility_by_command) {
    using K = ClientProtocol::PendingKind;
    const auto ok = [](K kind, int code) { return ClientProtocol::plausibleReply(kind, msaReply(code, {"x"})); };
    BOOST_TEST(ok(K::Data, 354));
    BOOST_TEST(!ok(K::Data, 250));
    BOOST_TEST(ok(K::Data, 451));
    BOOST_TEST(!ok(K::Mail, 354));
    BOOST_TEST(!ok(K::DataEnd, 354));
    BOOST_TEST(ok(K::DataEnd, 250));
    BOOST_TEST(ok(K::DataEnd, 554));
    BOOST_TEST(ok(K::Rcpt, 251));
    BOOST_TEST(!ok(K::AuthLine, 250));
    BOOST_TEST(ok(K::AuthLine, 334));
    BOOST_TEST(ok(K::AuthLine, 235));
    BOOST_TEST(ok(K::Quit, 221));
    BOOST_TEST(ok(K::Noop, 421));
}

// ---------------------------------------------------------------------------------------------
// Refused verbs and bad lines

BOOST_AUTO_TEST_CASE(refused_verbs_502_never_forwarded) {
    for (int phase = 0; phase < 3; ++phase) {
        BOOST_TEST_CONTEXT("phase " << phase) {
            Session s;
            if (phase == 0) {
                s.greet();
            } else if (phase == 1) {
                s.toTlsEhlo();
            } else {
                s.authenticate();
            }
            for (const char* verb : {"VRFY user", "EXPN list", "ETRN example.com", "XCLIENT ADDR=1.2.3.4",
                                     "XFORWARD ADDR=1.2.3.4", "TURN"}) {
                BOOST_TEST_INFO(verb);
                s.feed(std::string(verb) + "\r\n");
                BOOST_TEST(s.out() == "502 5.5.1 Error: command not implemented\r\n");
            }
            s.feed("FOO bar\r\n");
            BOOST_TEST(s.out() == "502 5.5.2 Error: command not recognized\r\n");
            BOOST_TEST(s.host.upstream == "");
        }
    }
}

BOOST_AUTO_TEST_CASE(checklist33_bdat_then_421) {
    // Checklist row 33: BDAT without CHUNKING advertised -> 502 5.5.1, then 421 (the chunk that
    // follows BDAT would otherwise be read as commands).
    Session s;
    s.authenticate();
    s.feed("BDAT 12 LAST\r\n");
    const std::string r = s.out();
    BOOST_TEST(r.rfind("502 5.5.1 ", 0) == 0u);
    BOOST_TEST(r.find("\r\n421 ") != std::string::npos);
    BOOST_TEST(s.host.closes == 1);
}

BOOST_AUTO_TEST_CASE(command_line_too_long_500) {
    Session s;
    s.toTlsEhlo();
    s.feed("MAIL FROM:<" + std::string(static_cast<std::size_t>(s.cfg.limits.commandLineLength), 'a') + "@b>\r\n");
    BOOST_TEST(s.out() == "500 5.5.2 Error: line too long\r\n");
    // Beyond the reader limit too, and the session stays in sync.
    s.feed(std::string(static_cast<std::size_t>(s.cfg.limits.authLineLength) + 100, 'x') + "\r\nNOOP\r\n");
    BOOST_TEST(s.out() == "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    // After AUTH, relayed commands keep the command limit.
    Session t;
    t.authenticate();
    t.feed("RCPT TO:<" + std::string(static_cast<std::size_t>(t.cfg.limits.commandLineLength), 'a') + ">\r\nNOOP\r\n");
    BOOST_TEST(t.out() == "500 5.5.2 Error: line too long\r\n");
    BOOST_TEST(t.up() == "NOOP\r\n");
}

BOOST_AUTO_TEST_CASE(bare_lf_in_command_500_nothing_executed) {
    Session s;
    s.authenticate();
    s.feed("MAIL FROM:<a>\nRCPT TO:<b>\r\n");
    BOOST_TEST(s.out() == "500 5.5.2 Error: bare <CR> or <LF> in command\r\n");
    BOOST_TEST(s.up() == "");
    s.feed("MAIL FROM:<a>\rRCPT TO:<b>\r\n");
    BOOST_TEST(s.out() == "500 5.5.2 Error: bare <CR> or <LF> in command\r\n");
    s.feed(std::string("NOOP\0QUIT\r\n", 11));
    BOOST_TEST(s.out() == "500 5.5.2 Error: bare <CR> or <LF> in command\r\n");
    BOOST_TEST(s.up() == "");
    BOOST_TEST(s.host.closes == 0);
}

BOOST_AUTO_TEST_CASE(max_errors_421) {
    Config c = makeConfig();
    c.limits.maxErrors = 3;
    Session s(c);
    s.greet();
    s.feed("FOO\r\nBAR\r\n");
    BOOST_TEST(s.out() == "502 5.5.2 Error: command not recognized\r\n502 5.5.2 Error: command not recognized\r\n");
    s.feed("BAZ\r\nNOOP\r\n");
    BOOST_TEST(s.out() == "502 5.5.2 Error: command not recognized\r\n421 4.7.0 proxy.test Error: too many errors\r\n");
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.host.sendsAfterClose == 0);
}

// ---------------------------------------------------------------------------------------------
// EHLO after AUTH

// A client that reads EHLO once, before AUTH, must see what the MSA takes: SMTPUTF8 and DSN
// when it has them, its smaller SIZE, no 8BITMIME when it lacks it.
BOOST_AUTO_TEST_CASE(ehlo_before_auth_advertises_the_msa_intersection) {
    Session s;
    s.host.msaCapsKnown = parseEhloCaps({"msa.test", "PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "DSN",
                                         "CHUNKING", "XCLIENT ADDR"});
    s.toTls();
    s.feed("EHLO client.example\r\n");
    BOOST_TEST(s.out() == "250-proxy.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-ENHANCEDSTATUSCODES\r\n"
                          "250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n"
                          "250 AUTH=PLAIN LOGIN CRAM-MD5\r\n");
    s.host.msaCapsKnown = parseEhloCaps({"msa.test", "PIPELINING", "SIZE 100000000"});
    s.feed("EHLO client.example\r\n");
    BOOST_TEST(s.out() == "250-proxy.test\r\n250-PIPELINING\r\n250-SIZE " +
                              std::to_string(s.cfg.limits.maxMessageSize) +
                              "\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n"
                              "250 AUTH=PLAIN LOGIN CRAM-MD5\r\n");
    // Before TLS nothing of it shows.
    Session plain;
    plain.host.msaCapsKnown = s.host.msaCapsKnown;
    plain.greet();
    plain.feed("EHLO client.example\r\n");
    BOOST_TEST(plain.out() == kEhloPreTls);
}

BOOST_AUTO_TEST_CASE(ehlo_after_auth_resets_msa_and_filters_caps) {
    Session s;
    s.authenticate();
    s.feed("EHLO other.example\r\n");
    BOOST_TEST(s.up() == "RSET\r\n");
    BOOST_TEST(s.out() == "");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    const std::string r = s.out();
    BOOST_TEST(r == "250-proxy.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
                    "250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n");
    for (const char* gone : {"CHUNKING", "XCLIENT", "STARTTLS", "AUTH"}) {
        BOOST_TEST(r.find(gone) == std::string::npos);
    }
    BOOST_TEST(s.p->helo() == "other.example");
    BOOST_TEST(s.p->authenticated());
    s.feed("HELO other.example\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    BOOST_TEST(s.out() == "250 proxy.test\r\n");
}


// ---------------------------------------------------------------------------------------------
// Names typed at AUTH (issue 8 items 5 and 6): refused on their face before any backend sees
// them, on the AUTH line and after a 334 alike; one spelling per account afterwards.

namespace {

const std::string kControlInName = "501 5.5.2 Error: control characters are not allowed in the user name\r\n";

bool warned(const FakeHost& host, const std::string& needle) {
    return std::any_of(host.warnings.begin(), host.warnings.end(),
                       [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

}  // namespace

BOOST_AUTO_TEST_CASE(login_name_with_nul_refused_before_the_backend) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onAuthResult(authMore("Username:"));
    s.out();
    // Cyrus would read "alice"; the guard would have seen a new name every time.
    s.feed(encodeBase64(std::string("alice\0x1", 8)) + "\r\n");
    BOOST_TEST(s.out() == kControlInName);
    BOOST_TEST(s.host.authSteps.empty());
    BOOST_TEST(s.host.authCancels == 1);
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
    BOOST_TEST(s.p->counters().authFailures == 0u);  // no password was checked
    BOOST_TEST(s.p->counters().errors == 1u);
    BOOST_TEST(warned(s.host, "SASL LOGIN authentication refused: control characters in the user name, "
                              "sasl_username=alice?x1"));
    // As the initial response on the AUTH line: the same, and no backend call at all.
    s.feed("AUTH LOGIN " + encodeBase64(std::string("alice\0x2", 8)) + "\r\n");
    BOOST_TEST(s.out() == kControlInName);
    BOOST_TEST(s.host.authStarts.size() == 1u);
}

BOOST_AUTO_TEST_CASE(control_characters_refused_in_every_mechanism) {
    for (const std::string& bad : {std::string("alice\0x", 7), std::string("ali\rce"), std::string("alice\x7f")}) {
        Session s;
        s.toTlsEhlo();
        s.feed("AUTH PLAIN " + plainIr("", bad, "pass") + "\r\n");
        BOOST_TEST(s.out() == (bad.find('\0') != std::string::npos ? kAuthFailed : kControlInName));
        s.feed("AUTH PLAIN\r\n");
        s.p->onAuthResult(authMore(""));
        s.out();
        s.feed(plainIr("", bad, "pass") + "\r\n");
        BOOST_TEST(s.out() == (bad.find('\0') != std::string::npos ? kAuthFailed : kControlInName));
        s.feed("AUTH CRAM-MD5\r\n");
        s.p->onAuthResult(authMore("<1.2@proxy.test>"));
        s.out();
        s.feed(encodeBase64(bad + " 0123456789abcdef0123456789abcdef") + "\r\n");
        BOOST_TEST(s.out() == kControlInName);
        BOOST_TEST(s.host.authSteps.empty());
        BOOST_TEST(s.host.authStarts.size() == 2u);  // the two that waited for a 334
    }
    // A PLAIN authzid with control characters.
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr(std::string("user\t"), "user", "pass") + "\r\n");
    BOOST_TEST(s.out() == "501 5.5.2 Error: control characters are not allowed in the authorization identity\r\n");
    BOOST_TEST(s.host.authStarts.empty());
}

BOOST_AUTO_TEST_CASE(login_password_with_nul_refused) {
    // Cyrus compares passwords with strcmp(): "secret\0x" would pass for "secret".
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN " + encodeBase64("alice") + "\r\n");
    s.p->onAuthResult(authMore("Password:"));
    s.out();
    s.feed(encodeBase64(std::string("secret\0x", 8)) + "\r\n");
    BOOST_TEST(s.out() == "501 5.5.2 Error: NUL characters are not allowed in a password\r\n");
    BOOST_TEST(s.host.authSteps.empty());
    BOOST_TEST(s.host.authCancels == 1);
    for (const auto& w : s.host.warnings) {
        BOOST_TEST(w.find("secret") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(cram_md5_user_is_everything_before_the_last_space) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH CRAM-MD5\r\n");
    s.p->onAuthResult(authMore("<1.2@proxy.test>"));
    s.out();
    s.feed(encodeBase64("alice smith 0123456789abcdef0123456789abcdef") + "\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authSteps.size(), 1u);
    BOOST_TEST(s.p->user() == "alice smith");
}

BOOST_AUTO_TEST_CASE(over_long_user_name_refused_at_auth) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", std::string(256, 'u'), "pass") + "\r\n");
    BOOST_TEST(s.out() == "501 5.5.2 Error: user name too long\r\n");
    // 86 '=' are 258 octets as xtext: over Postfix's XCLIENT limit, so refused here rather
    // than a 454 from every MSA session.
    s.feed("AUTH LOGIN " + encodeBase64(std::string(86, '=')) + "\r\n");
    BOOST_TEST(s.out() == "501 5.5.2 Error: user name too long\r\n");
    BOOST_TEST(s.host.authStarts.empty());
    s.feed("AUTH LOGIN " + encodeBase64(std::string(85, '=')) + "\r\n");
    BOOST_TEST(s.host.authStarts.size() == 1u);

    // Replayed credentials carry no XCLIENT: only the 255-octet limit applies.
    Config c = makeConfig();
    c.upstream.login = UpstreamLogin::Replay;
    Session r(c);
    r.toTls();
    r.feed("EHLO client.example\r\n");
    r.out();
    r.feed("AUTH LOGIN " + encodeBase64(std::string(86, '=')) + "\r\n");
    BOOST_TEST(r.host.authStarts.size() == 1u);
}

BOOST_AUTO_TEST_CASE(authzid_judged_alike_on_the_auth_line_and_after_334) {
    // "alice " names alice to Cyrus (it strips blanks) but is not "alice": refused either way.
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("alice ", "alice", "pass") + "\r\n");
    BOOST_TEST(s.out() == kAuthFailed);
    s.feed("AUTH PLAIN\r\n");
    BOOST_REQUIRE_EQUAL(s.host.authStarts.size(), 1u);
    s.p->onAuthResult(authMore(""));
    BOOST_TEST(s.out().rfind("334", 0) == 0u);
    s.feed(plainIr("alice ", "alice", "pass") + "\r\n");
    BOOST_TEST(s.out() == kAuthFailed);
    BOOST_TEST(s.host.authSteps.empty());
    BOOST_TEST(s.host.authCancels == 1);
    BOOST_TEST(s.p->counters().authFailures == 2u);
    // An authzid equal to the user name is fine after a 334 too.
    s.feed("AUTH PLAIN\r\n");
    s.p->onAuthResult(authMore(""));
    s.out();
    s.feed(plainIr("alice", "alice", "pass") + "\r\n");
    BOOST_TEST(s.host.authSteps.size() == 1u);
}

BOOST_AUTO_TEST_CASE(xclient_login_is_the_canonical_identity) {
    // Cyrus returns the name with the default realm when the customer typed it so.
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "alice@proxy.test", "pass") + "\r\n");
    s.p->onAuthResult(authDone("alice@proxy.test"));
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    BOOST_TEST(s.host.opens[0].login == "alice");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.p->user() == "alice");
    BOOST_TEST(std::count(s.host.infos.begin(), s.host.infos.end(),
                          "SASL PLAIN authentication succeeded, sasl_username=alice, "
                          "cyrus_username=alice@proxy.test") == 1);
    s.out();
    s.openData();
    s.feed("x\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    BOOST_REQUIRE_EQUAL(s.host.accepted.size(), 1u);
    BOOST_TEST(s.host.accepted[0] == "alice");  // the migration report

    // auth.sasl_realm set: Cyrus appends it to a bare name; it is removed again.  Another
    // realm is another account and keeps its name.
    Config c = makeConfig();
    c.auth.saslRealm = "isp.example";
    for (const auto& [cyrus, sent] : std::vector<std::pair<std::string, std::string>>{
             {"alice@isp.example", "alice"}, {"alice@other.example", "alice@other.example"},
             {"alice@proxy.test", "alice@proxy.test"}}) {
        Session r(c);
        r.toTlsEhlo();
        r.feed("AUTH PLAIN " + plainIr("", "alice", "pass") + "\r\n");
        r.p->onAuthResult(authDone(cyrus));
        BOOST_REQUIRE_EQUAL(r.host.opens.size(), 1u);
        BOOST_TEST(r.host.opens[0].login == sent);
    }
}

BOOST_AUTO_TEST_CASE(replay_sends_the_name_as_typed) {
    // The MSA checks the customer's own credentials: they go as typed.
    Config c = makeConfig();
    c.upstream.login = UpstreamLogin::Replay;
    Session s(c);
    s.toTls();
    s.feed("EHLO client.example\r\n");
    s.out();
    s.feed("AUTH PLAIN " + plainIr("", "alice@proxy.test", "secret") + "\r\n");
    s.p->onAuthResult(authDone("alice@proxy.test"));
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    BOOST_TEST(s.host.opens[0].login == "alice@proxy.test");
    BOOST_TEST(s.p->user() == "alice");
}

// ---------------------------------------------------------------------------------------------
// Backend "upstream": the MSA verifies

namespace {

Config upstreamBackend() {
    Config c = makeConfig();
    c.auth.backend = AuthBackend::Upstream;
    return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(backend_upstream_plain_relayed) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    BOOST_TEST(s.host.opens.empty());  // nothing opened before AUTH
    const std::string ir = plainIr("", "user", "pass");
    s.feed("AUTH PLAIN " + ir + "\r\n");
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 1u);
    BOOST_TEST(s.host.opens[0].login == "");
    BOOST_TEST(s.host.opens[0].password == "");
    BOOST_TEST(s.host.opens[0].helo == "client.example");
    BOOST_TEST(s.host.authStarts.empty());
    BOOST_TEST(s.up() == "");
    BOOST_TEST(s.out() == "");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.up() == "AUTH PLAIN " + ir + "\r\n");
    BOOST_TEST(s.out() == "");
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(s.out() == "235 2.7.0 Authentication successful\r\n");
    BOOST_TEST(s.p->authenticated());
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\n");
}

BOOST_AUTO_TEST_CASE(backend_upstream_login_334_relayed) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.up() == "AUTH LOGIN\r\n");
    s.p->onUpstreamReply(msaReply(334, {"VXNlcm5hbWU6"}));
    BOOST_TEST(s.out() == "334 VXNlcm5hbWU6\r\n");
    s.feed(encodeBase64("user") + "\r\n");
    BOOST_TEST(s.up() == encodeBase64("user") + "\r\n");
    s.p->onUpstreamReply(msaReply(334, {"UGFzc3dvcmQ6"}));
    BOOST_TEST(s.out() == "334 UGFzc3dvcmQ6\r\n");
    s.feed(encodeBase64("pass") + "\r\n");
    BOOST_TEST(s.up() == encodeBase64("pass") + "\r\n");
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(s.out() == "235 2.7.0 Authentication successful\r\n");
    BOOST_TEST(s.p->authenticated());
    BOOST_TEST(s.p->user() == "user");
}

BOOST_AUTO_TEST_CASE(backend_upstream_empty_334_keeps_its_space) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN\r\n");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.up() == "AUTH PLAIN\r\n");
    // Postfix writes "334 "; the parser keeps one empty line, and it must go out as "334 ".
    ReplyParser parser;
    BOOST_REQUIRE((parser.feedLine("334 ") == ReplyParser::Status::Complete));
    s.p->onUpstreamReply(parser.take());
    BOOST_TEST(s.out() == "334 \r\n");
    s.feed(plainIr("", "user", "pass") + "\r\n");
    BOOST_TEST(s.up() == plainIr("", "user", "pass") + "\r\n");
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(s.out() == "235 2.7.0 Authentication successful\r\n");
    BOOST_TEST(s.p->authenticated());
}

BOOST_AUTO_TEST_CASE(backend_upstream_535_relayed_and_counted) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.up();
    s.p->onUpstreamReply(msaReply(535, {"5.7.8 Error: authentication failed: authentication failure"}));
    BOOST_TEST(s.out() == kMsaAuthFailed);
    BOOST_TEST(!s.p->authenticated());
    BOOST_TEST(s.p->counters().authFailures == 1u);
    s.feed("MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.out() == kAuthRequired);
    BOOST_TEST(s.up() == "");
    // The next attempt reuses the open MSA session.
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    BOOST_TEST(s.host.opens.size() == 1u);
    BOOST_TEST(s.up() == "AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    s.p->onUpstreamReply(msaReply(535, {"5.7.8 Error: authentication failed: authentication failure"}));
    BOOST_TEST(s.out() == kMsaAuthFailed);
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    s.p->onUpstreamReply(msaReply(535, {"5.7.8 Error: authentication failed: authentication failure"}));
    BOOST_TEST(s.out() == kMsaAuthFailed + "421 4.7.0 proxy.test Error: too many failed authentications\r\n");
    BOOST_TEST(s.host.closes == 1);
}

// Backend "upstream": a body we refuse (bare LF) drops the MSA session without the terminator,
// as in the other modes, and a fresh one logs in again with the customer's own PLAIN/LOGIN
// credentials, so the customer goes on instead of getting 421.
namespace {

void refuseBodyThenReopen(Session& s, const std::string& user, const std::string& pass) {
    s.openData();
    s.feed("x\n.\nMAIL FROM:<evil>\r\n.\r\n");
    BOOST_TEST(s.out() == "550 5.5.2 Error: bare <CR> or <LF> in message body; the message was not sent\r\n");
    BOOST_TEST(s.host.aborts == 1);
    BOOST_TEST(s.host.closes == 0);
    BOOST_TEST(s.up().find("evil") == std::string::npos);
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 2u);
    BOOST_TEST(!s.host.opens[0].logInAgain);
    BOOST_TEST(s.host.opens[1].logInAgain);
    BOOST_TEST(s.host.opens[1].login == user);
    BOOST_TEST(s.host.opens[1].password == pass);
    BOOST_TEST(s.p->state() == ClientProtocol::State::UpstreamOpening);
    s.feed("MAIL FROM:<a@b>\r\n");  // waits for the new MSA session
    BOOST_TEST(s.up() == "");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.out() == "");  // no second 235
    BOOST_TEST(s.up() == "MAIL FROM:<a@b>\r\n");
    BOOST_TEST(s.p->authenticated());
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    BOOST_TEST(s.out() == "250 2.1.0 Ok\r\n");
}

}  // namespace

BOOST_AUTO_TEST_CASE(backend_upstream_refused_body_plain_goes_on) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.up();
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    s.out();
    refuseBodyThenReopen(s, "user", "pass");
}

BOOST_AUTO_TEST_CASE(backend_upstream_refused_body_login_goes_on) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.p->onUpstreamReply(msaReply(334, {"VXNlcm5hbWU6"}));
    s.feed(encodeBase64("user") + "\r\n");
    s.p->onUpstreamReply(msaReply(334, {"UGFzc3dvcmQ6"}));
    s.feed(encodeBase64("pass") + "\r\n");
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    s.out();
    s.up();
    refuseBodyThenReopen(s, "user", "pass");
}

BOOST_AUTO_TEST_CASE(backend_upstream_refused_body_cram_md5_closes) {
    // A CRAM-MD5 answer is bound to the MSA's challenge: no way to log in again.
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH CRAM-MD5\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.p->onUpstreamReply(msaReply(334, {encodeBase64("<1.2@msa.test>")}));
    s.feed(encodeBase64("user 0123456789abcdef0123456789abcdef") + "\r\n");
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    s.out();
    s.up();
    s.openData();
    s.feed("x\n.\nMAIL FROM:<evil>\r\n.\r\n");
    BOOST_TEST(s.out() == "550 5.5.2 Error: bare <CR> or <LF> in message body; the message was not sent\r\n"
                          "421 4.4.2 proxy.test Error: closing connection\r\n");
    BOOST_TEST(s.host.aborts == 1);
    BOOST_TEST(s.host.closes == 1);
    BOOST_TEST(s.host.opens.size() == 1u);
    BOOST_TEST(s.up().find("evil") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(backend_upstream_login_again_refused_421) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    s.out();
    s.up();
    s.openData();
    s.feed("x\nz\r\n.\r\n");
    s.out();
    BOOST_REQUIRE_EQUAL(s.host.opens.size(), 2u);
    s.p->onUpstreamFailed(UpstreamFailure::Refused, "MSA refused the customer's credentials");
    BOOST_TEST(s.out() == "421 4.4.1 proxy.test Error: mail server unavailable, try again later\r\n");
    BOOST_TEST(s.host.closes == 1);
}


BOOST_AUTO_TEST_CASE(backend_upstream_nul_name_refused_nothing_relayed) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.up() == "AUTH LOGIN\r\n");
    s.p->onUpstreamReply(msaReply(334, {"VXNlcm5hbWU6"}));
    s.out();
    s.feed(encodeBase64(std::string("alice\0x1", 8)) + "\r\n");
    BOOST_TEST(s.out() == kControlInName);
    BOOST_TEST(s.up() == "");          // not a byte of it to the MSA
    BOOST_TEST(s.host.aborts == 1);    // its half-done exchange goes with the session
    BOOST_TEST(s.p->state() == ClientProtocol::State::Command);
    // The next AUTH opens a fresh MSA session.
    s.feed("AUTH PLAIN " + plainIr("", "alice", "pass") + "\r\n");
    BOOST_TEST(s.host.opens.size() == 2u);
    BOOST_TEST(s.up() == "");
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.up() == "AUTH PLAIN " + plainIr("", "alice", "pass") + "\r\n");
    // On the AUTH line: refused before anything is opened or relayed.
    Session t(upstreamBackend());
    t.toTlsEhlo();
    t.feed("AUTH PLAIN " + plainIr("", "al\x01ice", "pass") + "\r\n");
    BOOST_TEST(t.out() == kControlInName);
    BOOST_TEST(t.host.opens.empty());
}

BOOST_AUTO_TEST_CASE(backend_upstream_authzid_refused_after_334_too) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.up();
    s.p->onUpstreamReply(msaReply(334, {""}));
    s.out();
    s.feed(plainIr("alice ", "alice", "pass") + "\r\n");
    BOOST_TEST(s.out() == kAuthFailed);
    BOOST_TEST(s.up() == "");
    BOOST_TEST(s.p->counters().authFailures == 1u);
}

BOOST_AUTO_TEST_CASE(backend_upstream_identity_for_log_and_report) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", " alice@proxy.test", "pass") + "\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.up();
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(s.p->authenticated());
    BOOST_TEST(s.p->user() == "alice");
    BOOST_TEST(std::count(s.host.infos.begin(), s.host.infos.end(),
                          "SASL PLAIN authentication succeeded (verified by the MSA), sasl_username=alice") == 1);
    s.out();
    s.openData();
    s.feed("x\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
    BOOST_REQUIRE_EQUAL(s.host.accepted.size(), 1u);
    BOOST_TEST(s.host.accepted[0] == "alice");
}

// ---------------------------------------------------------------------------------------------
// Split input and garbage

namespace {

// A whole dialogue, the client's bytes cut by `cut` (returns the next chunk length).
template <typename Cut>
std::string runDialogue(Cut cut) {
    Session s;
    auto feed = [&](const std::string& bytes) {
        std::size_t pos = 0;
        while (pos < bytes.size()) {
            const std::size_t n = std::min(bytes.size() - pos, std::max<std::size_t>(1, cut()));
            s.feed(std::string_view(bytes).substr(pos, n));
            pos += n;
        }
    };
    s.p->start();
    feed("EHLO a.example\r\nNOOP\r\nHELP\r\nVRFY x\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\n");
    if (s.host.startTlsCalls == 1) {
        s.p->onTlsEstablished();
    }
    feed("EHLO b.example\r\nAUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onAuthResult(authDone("user"));
    s.p->onUpstreamReady(msaCaps());
    feed("MAIL FROM:<a@b> AUTH=<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.1.0 Ok"}));
    s.p->onUpstreamReply(msaReply(250, {"2.1.5 Ok"}));
    s.p->onUpstreamReply(msaReply(354, {"go ahead"}));
    feed("Subject: x\r\n\r\n..dot\r\n.x\r\n\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued as ABC"}));
    feed("FOO\r\nQUIT\r\n");
    s.p->onUpstreamReply(msaReply(221, {"2.0.0 Bye"}));
    return s.host.client + "\n--\n" + s.host.upstream + "\n--\n" + std::to_string(s.host.closes);
}

}  // namespace

BOOST_AUTO_TEST_CASE(split_input_same_output) {
    const std::string whole = runDialogue([] { return std::size_t(1) << 20; });
    BOOST_TEST(whole.find("250 2.0.0 Ok: queued as ABC\r\n221 2.0.0 Bye\r\n") == std::string::npos);
    BOOST_TEST(whole.find("250 2.0.0 Ok: queued as ABC\r\n502 5.5.2 Error: command not recognized\r\n"
                          "221 2.0.0 Bye\r\n") != std::string::npos);
    BOOST_TEST(whole.find("Subject: x\r\n\r\n..dot\r\nx\r\n\r\n.\r\n") != std::string::npos);
    const std::string upstreamPart = whole.substr(whole.find("\n--\n"));
    BOOST_TEST(upstreamPart.find("MAIL FROM:<a@b>\r\n") != std::string::npos);
    BOOST_TEST(upstreamPart.find("AUTH=") == std::string::npos);
    const std::string bytewise = runDialogue([] { return std::size_t(1); });
    BOOST_TEST(bytewise == whole);
    std::mt19937 rng(4242);
    for (int i = 0; i < 50; ++i) {
        const std::string chunks = runDialogue([&] { return std::size_t(rng() % 7 + 1); });
        BOOST_TEST(chunks == whole);
    }
}

namespace {

std::size_t finalReplyLines(const std::string& out) {
    std::size_t n = 0;
    std::size_t start = 0;
    while (start < out.size()) {
        std::size_t end = out.find("\r\n", start);
        if (end == std::string::npos) {
            break;
        }
        const std::string line = out.substr(start, end - start);
        if (line.size() >= 3 && (line.size() == 3 || line[3] == ' ')) {
            ++n;
        }
        start = end + 2;
    }
    return n;
}

struct GarbageStats {
    unsigned messages = 0;   // accepted by the fake MSA
    unsigned aborts = 0;     // upstreamAbort calls
    unsigned reopens = 0;    // upstreamOpen after the first
    unsigned tls = 0;        // sessions that reached TLS
    unsigned auths = 0;      // sessions that authenticated
    unsigned closes = 0;
};

// Drives one session with random input; fake TLS, SASL and MSA answer whatever is asked.
void garbageRound(std::mt19937& rng, int mode, GarbageStats& stats) {
    static const std::vector<std::string> vocabulary{
        "EHLO x\r\n", "HELO y\r\n", "MAIL FROM:<a@b>\r\n", "MAIL FROM:<a@b> SIZE=99999999999\r\n",
        "RCPT TO:<c@d>\r\n", "DATA\r\n", ".\r\n", "\r\n", "\n", "\r", ".", "..", "\0",
        "AUTH PLAIN AHVzZXIAcGFzcw==\r\n", "AUTH LOGIN\r\n", "AUTH CRAM-MD5\r\n", "AUTH PLAIN =\r\n",
        "*\r\n", "dXNlcg==\r\n", "RSET\r\n", "NOOP\r\n", "VRFY a\r\n", "BDAT 5\r\n", "STARTTLS\r\n",
        "HELP\r\n", "x\n.\nMAIL FROM:<evil>\r\n", "\r\n.\r\n", "QUIT\r\n"};
    Config c = makeConfig();
    c.limits.maxErrors = 1000000;
    c.limits.maxAuthFailures = 1000000;
    c.limits.maxMessageSize = 300;
    c.limits.commandLineLength = 100;
    c.limits.authLineLength = 200;
    Session s(c);
    if (mode == 0) {
        s.p->start();
    } else if (mode == 1) {
        s.toTls();
    } else {
        s.authenticate();
    }

    std::string input;
    for (int i = 0; i < 60; ++i) {
        if (rng() % 3 == 0) {
            const std::size_t n = rng() % 20;
            for (std::size_t k = 0; k < n; ++k) {
                input.push_back(static_cast<char>(rng() & 0xff));
            }
        } else {
            const std::string& w = vocabulary[rng() % vocabulary.size()];
            input += (w == std::string("\0") ? std::string(1, '\0') : w);
        }
    }

    // Fake MSA: answers each command line the engine sent, understands DATA bodies.
    bool msaReady = mode == 2;
    int abortsSeen = s.host.aborts;
    std::size_t opensSeen = s.host.opens.size();
    std::size_t authSeen = s.host.authStarts.size() + s.host.authSteps.size();
    std::string msaBuf;
    bool inData = false;
    std::size_t msaCursor = s.host.upstream.size();
    auto pump = [&] {
        for (int guard = 0; guard < 10000; ++guard) {
            if (s.p->state() == ClientProtocol::State::Closed) {
                return;
            }
            if (s.host.aborts != abortsSeen) {
                abortsSeen = s.host.aborts;
                msaReady = false;
                inData = false;
                msaBuf.clear();
                msaCursor = s.host.upstream.size();
            }
            if (s.p->state() == ClientProtocol::State::TlsHandshake) {
                s.p->onTlsEstablished();
                continue;
            }
            const std::size_t authCalls = s.host.authStarts.size() + s.host.authSteps.size();
            if (s.p->state() == ClientProtocol::State::AuthBackend && authCalls != authSeen) {
                authSeen = authCalls;
                switch (rng() % 4) {
                case 0: s.p->onAuthResult(authMore("Password:")); break;
                case 1: s.p->onAuthResult(authFail()); break;
                case 2: s.p->onAuthResult(authTemp()); break;
                default: s.p->onAuthResult(authDone("user")); break;
                }
                continue;
            }
            if (s.p->state() == ClientProtocol::State::UpstreamOpening && s.host.opens.size() != opensSeen) {
                opensSeen = s.host.opens.size();
                if (rng() % 8 == 0) {
                    s.p->onUpstreamFailed(UpstreamFailure::Connect, "refused");
                } else {
                    msaReady = true;
                    msaCursor = s.host.upstream.size();
                    s.p->onUpstreamReady(msaCaps());
                }
                continue;
            }
            if (msaReady && s.host.upstream.size() > msaCursor) {
                msaBuf += s.host.upstream.substr(msaCursor);
                msaCursor = s.host.upstream.size();
            }
            if (!msaReady) {
                return;
            }
            if (inData) {
                const bool end = msaBuf.rfind(".\r\n", 0) == 0 || msaBuf.find("\r\n.\r\n") != std::string::npos;
                if (!end) {
                    return;
                }
                const std::size_t at = msaBuf.rfind(".\r\n", 0) == 0 ? 0 : msaBuf.find("\r\n.\r\n") + 2;
                msaBuf.erase(0, at + 3);
                inData = false;
                s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued"}));
                continue;
            }
            const std::size_t eol = msaBuf.find("\r\n");
            if (eol == std::string::npos) {
                return;
            }
            const std::string line = msaBuf.substr(0, eol);
            msaBuf.erase(0, eol + 2);
            if (line == "DATA") {
                if (rng() % 4 == 0) {
                    s.p->onUpstreamReply(msaReply(554, {"5.5.1 no valid recipients"}));
                } else {
                    inData = true;
                    s.p->onUpstreamReply(msaReply(354, {"go ahead"}));
                }
            } else if (line == "QUIT") {
                s.p->onUpstreamReply(msaReply(221, {"2.0.0 Bye"}));
            } else if (rng() % 5 == 0) {
                s.p->onUpstreamReply(msaReply(550, {"5.0.0 no"}));
            } else {
                s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok"}));
            }
        }
        BOOST_FAIL("pump did not settle");
    };

    std::size_t pos = 0;
    while (pos < input.size() && s.p->state() != ClientProtocol::State::Closed) {
        const std::size_t n = std::min<std::size_t>(input.size() - pos, rng() % 40 + 1);
        s.feed(std::string_view(input).substr(pos, n));
        pos += n;
        pump();
    }
    if (rng() % 2 == 0) {
        s.p->onClientGone("eof");
        pump();
    }

    // Every line gets at most one reply: replies <= CRLF-terminated lines sent + the greeting
    // + session-ending replies (451 and 421).
    std::size_t lines = 0;
    for (std::size_t i = 0; i + 1 < pos; ++i) {
        lines += input[i] == '\r' && input[i + 1] == '\n';
    }
    const std::size_t setupLines = mode == 0 ? 0 : mode == 1 ? 2 : 4;
    BOOST_TEST(finalReplyLines(s.host.client) <= lines + setupLines + 1 + 2);
    BOOST_TEST(s.host.sendsAfterClose == 0);
    BOOST_TEST(s.host.closes <= 1);
    BOOST_TEST(s.host.upstreamSendsWhileClosed == 0);
    BOOST_TEST(s.host.opensWhileOpen == 0);
    if (!s.p->authenticated()) {
        BOOST_TEST(s.host.upstream == "");  // nothing reaches the MSA without AUTH
    }
    BOOST_TEST(s.host.client.find("MAIL FROM:<evil>") == std::string::npos);
    BOOST_TEST(count(s.host.upstream, "evil") == 0u);
    if (mode == 0 && !s.p->tls()) {
        BOOST_TEST(s.host.authStarts.empty());
        BOOST_TEST(s.host.opens.empty());
    }
    stats.messages += s.p->counters().messages;
    stats.aborts += static_cast<unsigned>(s.host.aborts);
    stats.reopens += s.host.opens.size() > 1 ? static_cast<unsigned>(s.host.opens.size() - 1) : 0u;
    stats.tls += s.p->tls() ? 1u : 0u;
    stats.auths += s.p->authenticated() ? 1u : 0u;
    stats.closes += static_cast<unsigned>(s.host.closes);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Timing points for the latency histograms (the host keeps the clock)

namespace {

using Timing = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_CASE(auth_timing_from_the_last_line_to_the_verdict) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH LOGIN\r\n");
    s.p->onAuthResult(authMore("Username:"));
    s.feed(encodeBase64("user") + "\r\n");
    s.p->onAuthResult(authMore("Password:"));
    s.feed(encodeBase64("pass") + "\r\n");
    s.p->onAuthResult(authDone("user"));
    BOOST_TEST(s.host.timing == (Timing{"authLine", "authLine", "authLine"}));  // no verdict before the MSA
    s.p->onUpstreamReady(msaCaps());
    BOOST_TEST(s.host.timing == (Timing{"authLine", "authLine", "authLine", "authAnswered:success"}));
}

BOOST_AUTO_TEST_CASE(auth_timing_failure_temporary_and_refusals) {
    Session s;
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    s.p->onAuthResult(authFail());
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onAuthResult(authTemp());
    // MSA down after a good password: 454 too.
    s.feed("AUTH PLAIN " + plainIr("", "user", "pass") + "\r\n");
    s.p->onAuthResult(authDone("user"));
    s.p->onUpstreamFailed(UpstreamFailure::Connect, "refused");
    // A cancelled exchange and a syntax error judge no credentials: no verdict.
    s.feed("AUTH LOGIN\r\n");
    s.p->onAuthResult(authMore("Username:"));
    s.feed("*\r\n");
    s.feed("AUTH NTLM\r\n");
    BOOST_TEST(s.host.timing == (Timing{"authLine", "authAnswered:failure", "authLine", "authAnswered:temporary",
                                        "authLine", "authAnswered:temporary", "authLine", "authLine"}));
}

BOOST_AUTO_TEST_CASE(auth_timing_with_backend_upstream) {
    Session s(upstreamBackend());
    s.toTlsEhlo();
    s.feed("AUTH PLAIN " + plainIr("", "user", "wrong") + "\r\n");
    s.p->onUpstreamReady(msaCaps());
    s.p->onUpstreamReply(msaReply(535, {"5.7.8 Error: authentication failed"}));
    s.feed("AUTH LOGIN\r\n");
    s.p->onUpstreamReply(msaReply(334, {"VXNlcm5hbWU6"}));
    s.feed(encodeBase64("user") + "\r\n");
    s.p->onUpstreamReply(msaReply(334, {"UGFzc3dvcmQ6"}));
    s.feed(encodeBase64("pass") + "\r\n");
    s.p->onUpstreamReply(msaReply(235, {"2.7.0 Authentication successful"}));
    BOOST_TEST(s.host.timing == (Timing{"authLine", "sent:auth", "authAnswered:failure", "authLine", "sent:auth",
                                        "authLine", "sent:auth", "authLine", "sent:auth", "authAnswered:success"}));
}

BOOST_AUTO_TEST_CASE(relayed_commands_are_named_for_the_reply_histogram) {
    Session s;
    s.authenticate();
    s.host.timing.clear();
    s.openData();
    s.feed("Subject: x\r\n\r\nbody\r\n.\r\n");
    s.p->onUpstreamReply(msaReply(250, {"2.0.0 Ok: queued as 1"}));
    s.feed("EHLO again.example\r\nNOOP\r\nRSET\r\nQUIT\r\n");
    // The EHLO after AUTH is an RSET at the MSA (its reply is ours to write).
    BOOST_TEST(s.host.timing == (Timing{"sent:mail", "sent:rcpt", "sent:data", "sent:end_of_data", "sent:rset",
                                        "sent:noop", "sent:rset", "sent:quit"}));
}

BOOST_AUTO_TEST_CASE(engine_counts_with_the_metrics_labels) {
    Session s;
    s.host.counted.emplace();
    s.authenticate();
    s.p->onUpstreamFailed(UpstreamFailure::Verify, "certificate");
    const Metrics& m = *s.host.counted;
    BOOST_TEST(m.authSuccesses.at("PLAIN") == 1u);
    BOOST_TEST(m.upstreamErrors.at("verify") == 1u);
    BOOST_TEST(m.upstreamErrors.at("connect") == 0u);
}

BOOST_AUTO_TEST_CASE(random_garbage_never_crashes) {
    std::mt19937 rng(0x5eed);
    GarbageStats stats;
    for (int round = 0; round < 600; ++round) {
        BOOST_TEST_CONTEXT("round " << round) {
            garbageRound(rng, round % 3, stats);
        }
    }
    BOOST_TEST_MESSAGE("garbage: messages=" << stats.messages << " aborts=" << stats.aborts << " reopens="
                                            << stats.reopens << " tls=" << stats.tls << " auths=" << stats.auths
                                            << " closes=" << stats.closes);
    // The input reaches the interesting paths, not only the 502 branch.
    BOOST_TEST(stats.messages > 0u);
    BOOST_TEST(stats.aborts > 0u);
    BOOST_TEST(stats.reopens > 0u);
    BOOST_TEST(stats.tls > 200u);
    BOOST_TEST(stats.auths > 200u);
}

BOOST_AUTO_TEST_SUITE_END()
