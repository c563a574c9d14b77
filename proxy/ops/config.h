// The configuration: one validated struct with every default in one place (config.cpp's
// table), read from a libconfig file.  Every key is documented in man/subproxy.conf.5.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "wire/data_scanner.h"
#include "defence/access_list.h"  // issue 3: allow/deny lists
#include "defence/dnsbl_filter.h" // issue 3: DNSBL zones
#include "defence/trap.h"         // issue 3: spambot trap
#include "defence/ban_list.h"     // issue 3: password guessers, per-address limits
#include "defence/account_policy.h" // issue 12: compromised accounts

namespace subproxy {

enum class ListenerTls { StartTls, Implicit };
enum class UpstreamTls { StartTls, Implicit, None };
enum class AuthBackend { Sasl, Upstream };
enum class UpstreamLogin { Xclient, Replay, None };
enum class TlsProtocol { Tls1_0, Tls1_1, Tls1_2, Tls1_3 };  // tls.min_protocol

struct ListenerConfig {
    std::string address;  // "0.0.0.0", "::", "127.0.0.1", …
    int port = 0;
    ListenerTls tls = ListenerTls::StartTls;
    bool transparent = false;  // IP_TRANSPARENT / IPV6_TRANSPARENT (TPROXY)
    // Behind a load balancer: every connection starts with a PROXY v1/v2 header naming the
    // customer, taken only from a peer in trustedProxies (required then).
    bool proxyProtocol = false;
    CidrList trustedProxies;
};

struct TlsConfig {
    std::string cert;
    std::string key;
    // TLS 1.2 and older suites; empty: Mozilla's "intermediate" AEAD-only list, or its "old"
    // list when min_protocol is below TLSv1.2 (tls.cpp).  TLS 1.3 suites: OpenSSL's.
    std::string ciphers;
    // Below TLSv1.2 also lowers OpenSSL's security level to 0: OpenSSL 3 refuses TLS 1.0/1.1
    // at any other level (their handshake signs with SHA-1/MD5).
    TlsProtocol minProtocol = TlsProtocol::Tls1_2;
};

struct AuthConfig {
    AuthBackend backend = AuthBackend::Sasl;
    std::vector<std::string> mechanisms{"PLAIN", "LOGIN", "CRAM-MD5"};  // upper-case
    std::string saslService = "subproxy";
    std::string saslConfigDir = "/etc/subproxy/sasl";
    std::string saslRealm;  // empty: Cyrus' default (the hostname)
    int workers = 4;        // threads running blocking SASL steps
    int maxWorkers = 16;    // pool may grow to this while backends hang
    int timeout = 30;       // seconds a SASL step may take before 454
    int cacheTtl = 300;     // seconds a PLAIN/LOGIN success is answered from memory; 0: off
    int cacheSize = 10000;  // login names kept in that cache
};

struct UpstreamConfig {
    std::vector<std::string> hosts{"127.0.0.1"};  // tried in order; "original" = dialled address
    int port = 587;
    UpstreamTls tls = UpstreamTls::StartTls;
    bool verify = true;
    std::string caFile = "/etc/ssl/certs/ca-certificates.crt";
    std::string serverName;  // empty: the host name
    UpstreamLogin login = UpstreamLogin::Xclient;
    // A PROXY v2 header with the customer's addresses first on every MSA connection (Postfix
    // smtpd_upstream_proxy_protocol = haproxy); the probe sends LOCAL.
    bool proxyProtocol = false;
    std::string heloName;     // our EHLO name towards the MSA; empty: hostname
    int connectTimeout = 30;  // seconds, per host
    int replyTimeout = 300;   // seconds for any MSA reply but the end-of-data one
    int dataDoneTimeout = 600;  // seconds for the reply after "." (RFC 5321 §4.5.3.2.6)
    // Seconds between probes of the MSA's EHLO capabilities (also probed at start and reload,
    // and learned from every MSA session); 0: no timer.
    int probeInterval = 600;
};

struct Limits {
    int maxSessions = 1000;
    int commandLineLength = 2048;   // RFC 5321 512 + extensions; ESMTP clients send more
    int authLineLength = 12288;     // Postfix smtpd_sasl_resp_limit
    int maxErrors = 10;             // protocol errors before 421 and close
    int maxAuthFailures = 3;        // AUTH failures per session before 421 (RFC 4954 §9)
    int greetingTimeout = 300;      // idle seconds waiting for a command (RFC 5321 §4.5.3.2)
    int commandTimeout = 300;
    int dataTimeout = 180;          // per data block
    int tlsHandshakeTimeout = 60;
    // STARTTLS listeners hold the greeting this long for a TLS ClientHello (a mail program set
    // to "SSL" on port 25 speaks first), to serve it as implicit TLS; 0: greet at once.
    int tlsDetectMs = 200;
    std::uint64_t maxMessageSize = 50ull * 1024 * 1024;
    int maxPipelined = 100;         // relayed commands awaiting an MSA reply before we stop reading
    int shutdownGrace = 30;         // seconds SIGTERM lets sessions finish
    // Connection exhaustion (issue 8): a session must authenticate within a bounded total time,
    // and when sessions run short the unauthenticated ones get less of it (Postfix stress mode).
    int preAuthTimeout = 300;       // total seconds from connect to a successful AUTH
    int stressThreshold = 80;       // percent of max_sessions in use that means "under stress"
    int stressCommandTimeout = 10;  // idle seconds before AUTH for sessions begun under stress
    int stressPreAuthTimeout = 30;  // pre_auth_timeout for sessions begun under stress
    int proxyHeaderTimeout = 5;     // seconds for a listener's PROXY header (Postfix's 5 s)
};

// The customer's host name (forward-confirmed reverse DNS) for the log and XCLIENT NAME=.
struct ClientNameConfig {
    bool lookup = true;
    int timeoutMs = 2000;                  // PTR and the A/AAAA check together
    std::vector<std::string> nameservers;  // empty: /etc/resolv.conf
};


// What a legacy customer reads when refused: each says what to change in the mail program
// (RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets, so at most kMaxReplyText here).
struct Replies {
    static constexpr std::size_t kMaxReplyText = 500;  // 512 - "530 5.7.0 " - CRLF
    // 530 5.7.0 after TLS, to MAIL/RCPT/DATA without AUTH.
    std::string authRequired =
        "Authentication required: set your mail program to use port 587 with STARTTLS and "
        "your account password";
    // 530 5.7.0 before TLS, to AUTH/MAIL/RCPT/DATA: what a mail program set to "no
    // encryption" shows its user.  Postfix's wording first, for those who grep for it.
    std::string tlsRequired =
        "Must issue a STARTTLS command first: set your mail program to use port 587 with "
        "STARTTLS and your account password";
    // 535 5.7.8 to a wrong password or an unknown user (the same text for both).
    std::string authFailed =
        "Error: authentication failed: check the user name and the account password set in "
        "your mail program";
};

// Deployment (issue 4): process identity, pidfile, status endpoint, migration report.
struct DaemonConfig {
    std::string pidFile;             // empty: none
    std::string user = "nobody";     // only used when started as root
    std::string group;               // empty: the user's primary group
};

struct StatusConfig {
    bool enabled = false;            // the group "status" is present
    std::string address = "127.0.0.1";
    int port = 9425;
    std::string socket;              // a unix socket path instead of address/port
    std::string token;               // unlocks the pages with logins and addresses (/migration…)
    int maxConnections = 32;         // open at once; more are answered 503 and closed
};

struct MigrationConfig {
    std::string stateFile;           // empty: remembered in memory only
    int maxEntries = 100000;         // records (user, address, dialled port); LRU eviction
    int historyDays = 90;            // days of per-port daily history kept (today included)
    int flushInterval = 60;          // seconds between state file writes (only when changed)
    std::string notice;              // extra reply line after AUTH and after end of DATA
};

// Password guessers and per-address limits (issue 3 items 1 and 4): the "guard" group.
struct GuardConfig {
    GuardPolicy policy;               // counting, delays, bans (ban_list.h)
    CidrList trusted;                 // trusted_networks: exempt from delays, bans and limits
    bool banClose = false;            // ban_action "close": drop at accept, no 421
    std::string stateFile;            // empty: bans and counters live in memory only
    int stateInterval = 30;           // seconds between state file writes (when changed)
    std::string controlSocket;        // empty: no control socket
    int maxSessionsPerClient = 50;    // concurrent sessions per address (IPv6 grouped); 0 = off
    int connectionRate = 0;           // new connections per address per window; 0 = off
    int connectionRateWindow = 60;    // seconds
};

// Where the state several gateways share lives (issue 11): "local" (the state files above, one
// machine) or "redis" (the fleet; local state stays the source of every decision, Redis spreads
// it: see io/shared_state.h).  Read once at start (every key is restart-only).
enum class StateBackend { Local, Redis };
struct StateConfig {
    StateBackend backend = StateBackend::Local;
    // "127.0.0.1:6379", "[::1]:6379" (numeric: the control loop never waits on a resolver), or
    // an absolute unix socket path.
    std::string address = "127.0.0.1:6379";
    std::string host = "127.0.0.1";   // from address: the IP, or empty for a unix socket
    int port = 6379;
    std::string socket;               // from address: the unix socket path
    std::string username;             // ACL user; empty: the password alone (requirepass)
    std::string password;             // empty: no AUTH
    int database = 0;                 // SELECT
    std::string keyPrefix = "subproxy:";  // every key and the channel start with it
    int connectTimeoutMs = 1000;
    int commandTimeoutMs = 500;       // a reply later than this counts as an outage
    int replayLimit = 10000;          // updates kept while Redis is unreachable (oldest dropped)
    int retryInterval = 1;            // seconds between reconnection attempts
};

inline constexpr int kMaxWorkers = 256;

struct Config {
    std::string file;  // where it was read from
    std::string hostname;
    std::vector<ListenerConfig> listeners;
    TlsConfig tls;
    AuthConfig auth;
    UpstreamConfig upstream;
    Limits limits;
    Replies replies;
    BareNewline dataBareNewline = BareNewline::Reject;
    std::string logFacility = "mail";
    std::string logFile;  // empty: syslog (and -f's standard error) only
    int workers = 0;      // event loops (threads); 0: one per CPU online at start
    DaemonConfig daemon;
    StatusConfig status;
    MigrationConfig migration;
    TrapConfig trap;      // issue 3 item 2
    AccessConfig access;  // issue 3 item 3
    DnsblConfig dnsbl;
    GuardConfig guard;    // issue 3 items 1 and 4
    AccountsConfig accounts;  // issue 12: compromised accounts
    ClientNameConfig clientName;  // issue 11 item 5
    StateConfig state;    // issue 11: several gateways
};

// A configuration problem, printed as "FILE:LINE: message".
struct ConfigError : std::runtime_error {
    ConfigError(std::string file, int line, const std::string& message);
    std::string file;
    int line;
};

// Reads and validates `path`.  Throws ConfigError naming FILE:LINE and the key for unknown
// keys, wrong types and bad values.  Does not touch certificates or SASL (see server.h).
Config loadConfig(const std::string& path);
// Same, from text (unit tests); `name` stands in for the file name in errors.
Config parseConfig(const std::string& text, const std::string& name);

int syslogFacility(const std::string& name);  // -1 when unknown

// The keys SIGHUP cannot apply (read once at start-up: Cyrus SASL, threads, syslog, the
// process identity, pid file, status endpoint, state files) whose values differ between the
// running and the new configuration, by name ("status.port").  `listen` is not among them:
// the server compares it with the sockets it really holds.  config_reload.cpp.
std::vector<std::string> restartOnlyChanges(const Config& running, const Config& next);

// "FILE:LINE" of the setting at `path` (e.g. "tls.key") in a configuration file, or "FILE"
// when it is absent: for problems found after loading (e.g. by `subproxy -t`).
std::string settingLocation(const std::string& file, const std::string& path);
// The same as a ConfigError about that setting: "FILE:LINE: message" (or "FILE: message").
ConfigError settingError(const std::string& file, const std::string& path, const std::string& message);

}  // namespace subproxy
