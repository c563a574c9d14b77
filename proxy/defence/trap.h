// The spambot trap (issue 3, item 2): signals a session can raise, the action configured for
// each, and the pure pieces that detect them (non-SMTP input, fan-out).  Pure: no libevent,
// no sockets; time is passed in.  session.cpp applies the actions (tarpit, reject, ban).
#pragma once
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace subproxy {

enum class TrapSignal {
    Pregreet,     // talked before the full greeting
    NoAuth,       // MAIL/RCPT without AUTH: a bot talking straight to a remote MX
    FanOut,       // one client intercepted towards many distinct dialled addresses
    NonSmtp,      // HTTP request line or header, TLS ClientHello on the plain port
    BareNewline,  // bare CR or LF in a command line
    Dnsbl,        // DNSBL score at or above the threshold, seen at the decision point
};
constexpr int kTrapSignals = 6;

enum class TrapAction { Ignore, Log, Tarpit, Reject, Ban };

const char* trapSignalName(TrapSignal s);  // "pregreet", "no_auth", …: the config key and log
const char* trapActionName(TrapAction a);
bool parseTrapAction(std::string_view text, TrapAction& out);

struct TrapConfig {
    // Index by TrapSignal.  Defaults: only non-SMTP input (never a mail program) is refused;
    // the rest is logged so the operator (or fail2ban) decides.
    TrapAction actions[kTrapSignals] = {TrapAction::Log, TrapAction::Log, TrapAction::Log,
                                        TrapAction::Reject, TrapAction::Log, TrapAction::Log};
    int greetWaitMs = 0;              // 0: no teaser, greet at once (no pregreet test)
    int greetCacheTtl = 86400;        // seconds a passed greet wait is remembered (postscreen: 1d)
    int greetCacheSize = 10000;       // remembered client addresses (LRU beyond)
    int fanoutLimit = 20;             // distinct dialled addresses allowed per window
    int fanoutWindow = 600;           // seconds
    int fanoutMaxClients = 10000;     // tracked client addresses (LRU beyond)
    int tarpitIntervalMs = 1000;      // one stutter step every interval
    int tarpitBytes = 1;              // bytes per step
    int tarpitMax = 100;              // concurrently tarpitted sessions; beyond: reject
    int tarpitMaxTime = 600;          // seconds a tarpitted session may live
    TrapAction action(TrapSignal s) const { return actions[static_cast<int>(s)]; }
};

// What to do now.  `tarpitFree`: a tarpit slot is available (or this session holds one).
// Tarpit beyond the cap becomes reject, so the trap cannot exhaust the proxy.
TrapAction effectiveTrapAction(TrapAction configured, bool tarpitFree);

// First bytes of a plain-text session.  Recognises a TLS handshake record (0x16 0x03: a
// ClientHello sent to the STARTTLS port) and SSLv2-style hellos.  Empty: looks like text.
std::string detectBinaryHello(std::string_view firstBytes);

// What a client sent before any greeting on a STARTTLS listener: the start of a TLS handshake
// record (content type 0x16, major version 3: a mail program set to "SSL" speaks first),
// too little to tell (the single byte 0x16), or anything else.
enum class FirstBytes { TlsHandshake, Undecided, Other };
FirstBytes classifyFirstBytes(std::string_view firstBytes);

// A command line that is HTTP (request line "GET / HTTP/1.1", CONNECT, or a header such as
// "Host: x" / "User-Agent: y"), like postscreen's NON-SMTP COMMAND test.  Empty: not HTTP.
std::string detectHttpLine(std::string_view line);

// The stable log line for one detection (after the session's "[ip]:port: " prefix):
//   trap: signal=pregreet action=log dialled=[192.0.2.1]:25 helo=<x> detail=<…>
// Client-controlled text (helo, detail) comes last and is cleaned with printable().
std::string formatTrapLine(TrapSignal s, TrapAction a, const std::string& dialledAddress, int dialledPort,
                           std::string_view helo, std::string_view detail);

// Remembers, per client address, the distinct addresses it was intercepted towards within a
// sliding window.  Bounded: at most `maxClients` clients (least recently seen evicted) and
// `limit + 1` destinations each, stored as 64-bit hashes with a timestamp (16 bytes).
class FanOutTracker {
public:
    FanOutTracker(int limit, int windowSeconds, int maxClients);
    void configure(int limit, int windowSeconds, int maxClients);
    // Records a connection; returns the number of distinct destinations within the window
    // (capped at limit + 1).  Above `limit` the client fans out.
    int record(const std::string& client, const std::string& dialled, std::int64_t nowSeconds);
    std::size_t clients() const { return map_.size(); }

private:
    struct Dest {
        std::uint64_t hash;
        std::int64_t seen;
    };
    struct Entry {
        std::string client;
        std::vector<Dest> dests;
    };
    void trim();
    std::size_t limit_;
    std::int64_t window_;
    std::size_t maxClients_;
    std::list<Entry> lru_;  // front: most recently seen
    std::unordered_map<std::string, std::list<Entry>::iterator> map_;
};

}  // namespace subproxy
