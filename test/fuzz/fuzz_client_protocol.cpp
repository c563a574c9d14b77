// The customer-side SMTP engine (ClientProtocol) driven by a fuzzed script of events: client
// bytes (raw or canned SMTP), TLS up, SASL results, MSA ready/replies/failures, timeouts,
// disconnects and shutdown.  Invariants checked by the fake host:
//   * nothing reaches the MSA (open or send) before TLS and a successful AUTH (backend "sasl");
//     with backend "upstream" only the AUTH exchange itself is relayed before the MSA's 235
//   * nothing is sent to the client after close; nothing to an MSA that is not open
//   * every byte to the client is a well-formed reply (CRLF lines "NNN-"/"NNN ")
//   * replies to the client <= CRLF lines received + 2 + what host events may add
//   * illegal state transitions abort (the engine's own assert)
#include <fuzzer/FuzzedDataProvider.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wire/base64.h"
#include "engine/client_protocol.h"
#include "fuzz_util.h"
#include "ops/metrics.h"

using namespace subproxy;

namespace {

// FUZZ_TRACE=1 ./fuzz_client_protocol crash-file: prints the event script and host calls.
const bool kTrace = std::getenv("FUZZ_TRACE") != nullptr;
#define TRACE(...) do { if (kTrace) std::fprintf(stderr, __VA_ARGS__); } while (0)

struct FuzzHost : ClientProtocolHost {
    ClientProtocol* proto = nullptr;
    bool sasl = true;
    bool upstreamOpen_ = false;
    bool closed = false;
    bool inAuthDone = false;      // inside onAuthResult(Done)
    std::size_t finalReplies = 0;
    std::string clientPartial;    // an incomplete reply line (must not stay so at close)
    TrapAction trapAction = TrapAction::Log;
    Metrics m;
    bool useMetrics = false;
    int authStarts = 0;
    // What a real host can deliver: only answers to requests it was given.
    bool tlsRequested = false;
    bool authOutstanding = false;
    bool openOutstanding = false;
    bool upstreamReady = false;

    void sendToClient(std::string_view bytes) override {
        FUZZ_CHECK(!closed, "nothing is sent to the client after close");
        TRACE("    -> client: %s\n", fuzz::escape(bytes).c_str());
        clientPartial.append(bytes.data(), bytes.size());
        std::size_t start = 0;
        while (true) {
            const std::size_t e = clientPartial.find("\r\n", start);
            if (e == std::string::npos) break;
            const std::string_view l = std::string_view(clientPartial).substr(start, e - start);
            if (!(l.size() >= 3 && l[0] >= '2' && l[0] <= '5' && isdigit(l[1]) && isdigit(l[2]) &&
                  (l.size() == 3 || l[3] == ' ' || l[3] == '-'))) {
                std::fprintf(stderr, "bad reply line: %s\n", fuzz::escape(l).c_str());
            }
            FUZZ_CHECK(l.size() >= 3 && l[0] >= '2' && l[0] <= '5' && isdigit(l[1]) && isdigit(l[2]) &&
                           (l.size() == 3 || l[3] == ' ' || l[3] == '-'),
                       "every client line is NNN, NNN<SP>text or NNN-text");
            FUZZ_CHECK(l.find_first_of(std::string_view("\r\n", 2)) == std::string_view::npos,
                       "no bare CR/LF inside a reply line");
            if (l.size() == 3 || l[3] == ' ') ++finalReplies;
            start = e + 2;
        }
        clientPartial.erase(0, start);
        FUZZ_CHECK(clientPartial.empty(), "the host is only ever given whole reply lines");
    }
    void startTls() override { tlsRequested = true; }
    void authStart(const std::string& mechanism, const std::optional<std::string>&) override {
        FUZZ_CHECK(sasl, "authStart only with backend sasl");
        FUZZ_CHECK(proto->tls(), "no AUTH before TLS");
        FUZZ_CHECK(!proto->authenticated(), "no second AUTH");
        FUZZ_CHECK(!mechanism.empty(), "mechanism named");
        ++authStarts;
        authOutstanding = true;
    }
    void authStep(const std::string&) override {
        FUZZ_CHECK(sasl, "authStep only with backend sasl");
        authOutstanding = true;
    }
    void authCancel() override { authOutstanding = false; }
    void upstreamOpen(const UpstreamIdentity& id) override {
        TRACE("    -> upstreamOpen\n");
        FUZZ_CHECK(!closed, "no MSA connection after close");
        FUZZ_CHECK(!upstreamOpen_, "no second MSA connection while one is open");
        FUZZ_CHECK(proto->tls(), "no MSA connection before TLS");
        if (sasl) {
            FUZZ_CHECK(inAuthDone || proto->authenticated(),
                       "backend sasl: the MSA is opened only after AUTH succeeded");
            FUZZ_CHECK(!id.login.empty() || proto->authenticated() || true, "login");
        }
        upstreamOpen_ = true;
        openOutstanding = true;
        upstreamReady = false;
    }
    void upstreamSend(std::string_view bytes) override {
        TRACE("    -> upstream: %s\n", fuzz::escape(bytes).c_str());
        FUZZ_CHECK(!closed, "nothing to the MSA after close");
        FUZZ_CHECK(upstreamOpen_, "nothing to an MSA that is not open");
        if (!proto->authenticated()) {
            FUZZ_CHECK(!sasl, "backend sasl: nothing is relayed before AUTH succeeded");
            // backend upstream: only the AUTH exchange: "AUTH ...", base64 or "*", one line.
            FUZZ_CHECK(bytes.size() >= 2 && bytes.substr(bytes.size() - 2) == "\r\n" &&
                           bytes.find("\r\n") == bytes.size() - 2,
                       "pre-AUTH relay is exactly one line");
            const std::string_view l = bytes.substr(0, bytes.size() - 2);
            const bool ok = l.rfind("AUTH ", 0) == 0 || l == "*" || l.empty() || decodeBase64(l).has_value();
            if (!ok) std::fprintf(stderr, "pre-auth upstream line: %s\n", fuzz::escape(l).c_str());
            FUZZ_CHECK(ok, "backend upstream: only the AUTH exchange is relayed before 235");
        }
    }
    void upstreamAbort() override {
        TRACE("    -> upstreamAbort\n");
        upstreamOpen_ = false;
        openOutstanding = upstreamReady = false;
    }
    void closeClient(const std::string&) override {
        TRACE("    -> close\n");
        FUZZ_CHECK(!closed, "closed once");
        closed = true;
        upstreamOpen_ = false;
        openOutstanding = upstreamReady = false;
    }
    void setClientTimeout(int s) override { FUZZ_CHECK(s >= 0, "timeout >= 0"); }
    void setUpstreamTimeout(int s) override { FUZZ_CHECK(s >= 0, "timeout >= 0"); }
    void logInfo(const std::string&) override {}
    void logWarning(const std::string&) override {}
    Metrics* metrics() override { return useMetrics ? &m : nullptr; }
    TrapAction trapSignal(TrapSignal, const std::string&) override { return trapAction; }
};

const char* const kCanned[] = {
    "EHLO client.example\r\n",
    "HELO client.example\r\n",
    "STARTTLS\r\n",
    "AUTH PLAIN AHVzZXIAcGFzcw==\r\n",  // \0user\0pass
    "AUTH PLAIN\r\n",
    "AHVzZXIAcGFzcw==\r\n",
    "AUTH LOGIN\r\n",
    "dXNlcg==\r\n",
    "cGFzcw==\r\n",
    "AUTH CRAM-MD5\r\n",
    "*\r\n",
    "MAIL FROM:<a@example.org>\r\n",
    "MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME AUTH=<>\r\n",
    "RCPT TO:<b@example.net>\r\n",
    "DATA\r\n",
    "Subject: x\r\n\r\nbody\r\n",
    "..stuffed\r\n",
    ".\r\n",
    "\r\n.\r\n",
    "bare\nlf\r\n",
    "RSET\r\n",
    "NOOP\r\n",
    "QUIT\r\n",
    "HELP\r\n",
    "VRFY x\r\n",
    "BDAT 10 LAST\r\n",
    "GET / HTTP/1.1\r\n",
    "\x16\x03\x01\x00\x05",
};

const int kCodes[] = {220, 221, 235, 250, 251, 334, 354, 421, 451, 452, 454, 500, 501, 503, 530, 535, 550, 552, 554};

Reply makeReply(FuzzedDataProvider& fdp) {
    Reply r;
    r.code = fdp.ConsumeBool() ? fdp.PickValueInArray(kCodes) : fdp.ConsumeIntegralInRange(200, 599);
    const int n = fdp.ConsumeIntegralInRange(1, 3);
    for (int i = 0; i < n; ++i) {
        std::string t = fdp.ConsumeRandomLengthString(16);
        for (char& c : t) {
            if (c == '\r' || c == '\n' || c == '\0') c = '?';  // the ReplyParser's LineReader saw to that
        }
        r.lines.push_back(t);
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);

    Config config;
    config.hostname = "proxy.test";
    const bool sasl = fdp.ConsumeBool();
    config.auth.backend = sasl ? AuthBackend::Sasl : AuthBackend::Upstream;
    config.upstream.login = fdp.PickValueInArray({UpstreamLogin::Xclient, UpstreamLogin::Replay, UpstreamLogin::None});
    config.limits.maxErrors = fdp.ConsumeIntegralInRange(1, 12);
    config.limits.maxAuthFailures = fdp.ConsumeIntegralInRange(1, 4);
    config.limits.maxPipelined = fdp.ConsumeIntegralInRange(1, 8);
    config.limits.commandLineLength = fdp.ConsumeIntegralInRange(8, 128);
    config.limits.authLineLength = fdp.ConsumeIntegralInRange(8, 256);
    config.limits.maxMessageSize = fdp.ConsumeIntegralInRange<std::uint64_t>(0, 200);
    config.dataBareNewline = fdp.ConsumeBool() ? BareNewline::Normalize : BareNewline::Reject;
    if (fdp.ConsumeBool()) config.migration.notice = "Please move to port 587";
    if (fdp.ConsumeBool()) {
        config.dnsbl.decision = DnsblDecision::Mail;
        config.dnsbl.blockAuthenticated = fdp.ConsumeBool();
    }

    ClientEndpoint ep;
    ep.address = "192.0.2.10";
    ep.port = 51234;
    ep.destAddress = "198.51.100.1";
    ep.destPort = 25;
    ep.implicitTls = fdp.ConsumeBool();

    FuzzHost host;
    host.sasl = sasl;
    host.useMetrics = fdp.ConsumeBool();
    host.trapAction = fdp.PickValueInArray(
        {TrapAction::Ignore, TrapAction::Log, TrapAction::Tarpit, TrapAction::Reject, TrapAction::Ban});
    ClientProtocol proto(config, ep, host);
    host.proto = &proto;
    if (fdp.ConsumeBool()) {
        DnsblVerdict v;
        v.listed = true;
        v.score = 3;
        v.reply = "listed";
        v.summary = "zen=127.0.0.2";
        proto.setDnsblVerdict(v);
    }
    TRACE("config: backend=%s login=%d implicitTls=%d maxErrors=%d maxAuthFailures=%d\n", sasl ? "sasl" : "upstream",
          int(config.upstream.login), int(ep.implicitTls), config.limits.maxErrors, config.limits.maxAuthFailures);
    proto.start();

    std::size_t lines = 0;  // CRLFs delivered while the engine was listening
    std::size_t budget = 2; // greeting + one closing 421
    char lastByte = 0;      // a CRLF split across two deliveries still counts
    int steps = 0;
    while (fdp.remaining_bytes() > 0 && !host.closed && ++steps < 400) {
        switch (fdp.ConsumeIntegralInRange(0, 9)) {
        case 0:
        case 1:
        case 2: {  // client bytes
            std::string bytes = fdp.ConsumeBool() ? std::string(fdp.PickValueInArray(kCanned))
                                                  : fdp.ConsumeRandomLengthString(64);
            if (bytes == std::string("\x16\x03\x01\x00\x05")) bytes = std::string("\x16\x03\x01\x00\x05", 5);
            for (std::size_t i = 0; i < bytes.size(); ++i) {
                const char prev = i ? bytes[i - 1] : lastByte;
                if (bytes[i] == '\n' && prev == '\r') ++lines;
            }
            if (!bytes.empty()) lastByte = bytes.back();
            TRACE("client data: %s\n", fuzz::escape(bytes).c_str());
            proto.onClientData(bytes);
            break;
        }
        case 3:
            if (!host.tlsRequested) break;
            host.tlsRequested = false;
            budget += 1;  // implicit TLS greeting
            TRACE("tls established\n");
            proto.onTlsEstablished();
            break;
        case 4: {
            if (!host.authOutstanding) break;
            host.authOutstanding = false;
            AuthResult r;
            r.status = fdp.PickValueInArray(
                {AuthResult::Status::Done, AuthResult::Status::More, AuthResult::Status::Fail, AuthResult::Status::Temp});
            r.challenge = fdp.ConsumeRandomLengthString(8);
            r.username = fdp.ConsumeBool() ? "user" : fdp.ConsumeRandomLengthString(8);
            budget += 1;  // a 421 after the 535/454
            host.inAuthDone = r.status == AuthResult::Status::Done;
            TRACE("auth result %d\n", int(r.status));
            proto.onAuthResult(r);
            host.inAuthDone = false;
            break;
        }
        case 5: {
            if (!host.openOutstanding) break;
            host.openOutstanding = false;
            host.upstreamReady = true;
            std::vector<std::string> capLines{"msa.test", "PIPELINING", "SIZE 1000", "CHUNKING", "XCLIENT ADDR",
                                              "AUTH PLAIN", "8BITMIME"};
            if (fdp.ConsumeBool()) {
                std::string k = fdp.ConsumeRandomLengthString(12);
                for (char& c : k) {
                    if (c == '\r' || c == '\n' || c == '\0') c = '?';  // reply lines come from a LineReader
                }
                capLines.push_back(k);
            }
            budget += 1;
            TRACE("upstream ready\n");
            proto.onUpstreamReady(parseEhloCaps(capLines));
            break;
        }
        case 6:
        case 7:
            if (!host.upstreamReady) break;  // replies come only on an established MSA session
            budget += 1;  // out of sync 421, or the 421 after a refused AUTH / at shutdown
            {
                const Reply r = makeReply(fdp);
                TRACE("upstream reply: %s\n", fuzz::escape(r.wire()).c_str());
                proto.onUpstreamReply(r);
            }
            break;
        case 8: {
            if (!host.upstreamOpen_) break;
            budget += 2;  // 451 + 421
            const auto kind = fdp.PickValueInArray({UpstreamFailure::Connect, UpstreamFailure::Tls,
                                                     UpstreamFailure::Verify, UpstreamFailure::Protocol,
                                                     UpstreamFailure::Refused, UpstreamFailure::Lost,
                                                     UpstreamFailure::Timeout});
            TRACE("upstream failed %d\n", int(kind));
            host.upstreamOpen_ = false;  // the host reports a failure once its MSA connection is gone
            host.openOutstanding = host.upstreamReady = false;
            proto.onUpstreamFailed(kind, "fuzz");
            break;
        }
        case 9:
            budget += 1;
            switch (fdp.ConsumeIntegralInRange(0, 2)) {
            case 0: TRACE("client timeout\n"); proto.onClientTimeout(); break;
            case 1: TRACE("client gone\n"); proto.onClientGone("eof"); break;
            default: TRACE("shutdown\n"); proto.onShutdown(); break;
            }
            break;
        }
        if (host.finalReplies > lines + budget) {
            std::fprintf(stderr, "replies=%zu lines=%zu budget=%zu\n", host.finalReplies, lines, budget);
        }
        FUZZ_CHECK(host.finalReplies <= lines + budget, "no more replies than lines + 2 + host events");
        FUZZ_CHECK(proto.bufferedInput() <= static_cast<std::size_t>(config.limits.authLineLength) + 64 + 2 || !proto.idle() ||
                       proto.state() != ClientProtocol::State::Command,
                   "input buffer stays bounded while reading commands");
        if (host.closed) {
            FUZZ_CHECK(proto.state() == ClientProtocol::State::Closed, "closeClient means state Closed");
        }
    }
    return 0;
}
