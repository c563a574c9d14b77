// The customer-side SMTP engine: pure protocol, no I/O.  client_protocol.cpp holds the session's
// life (state, timeouts, the reply sink, closing); client_commands.cpp the input loop and the
// command table dispatch; client_greeting.cpp HELO/EHLO and STARTTLS; client_auth.cpp the AUTH
// exchange; client_relay.cpp the relaying to the MSA and its replies; client_data.cpp the DATA
// body, the message's verdict and a failing MSA; client_accounts.cpp compromised accounts.
// Bytes and events go in; replies, upstream traffic and requests (start TLS, run a SASL step,
// open the MSA session) come out through ClientProtocolHost.  session.cpp implements the host
// with libevent; the unit tests implement it with a recording fake.
//
// One transition function (setState) assigns the state; the command table (smtp_command.h)
// decides what is allowed before TLS and before AUTH.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "defence/account_policy.h"
#include "engine/fifo.h"
#include "ops/config.h"
#include "wire/data_scanner.h"
#include "defence/dnsbl_filter.h"
#include "wire/cidr.h"
#include "wire/ehlo_caps.h"
#include "wire/line_reader.h"
#include "ops/metrics.h"
#include "wire/smtp_command.h"
#include "wire/smtp_reply.h"
#include "defence/trap.h"

namespace subproxy {

// Who the customer is and what it dialled; filled by the listener.
struct ClientEndpoint {
    std::string address;      // normalised (no ::ffff:): logs, XCLIENT
    int port = 0;
    std::string destAddress;  // the address the customer dialled (original destination)
    int destPort = 0;
    bool implicitTls = false;  // accepted on a tls = "implicit" listener
    std::string via;           // behind a load balancer: "PROXY v2 from [10.0.0.5]:4711"
    std::string name;          // XCLIENT NAME=: a confirmed host name, "[TEMPUNAVAIL]"; empty: "[UNAVAILABLE]"
    IpAddress ip;              // `address`, read once at accept: access list, guard, bans, trap
};

// What the MSA must be told about the customer (XCLIENT, or the credentials to replay).
struct UpstreamIdentity {
    std::string login;     // authenticated user name (empty with backend "upstream")
    std::string password;  // only kept for login = "replay", and for `logInAgain`
    std::string helo;
    ClientEndpoint client;
    // Backend "upstream", a fresh MSA session after a body we refused: the customer already
    // proved this PLAIN/LOGIN password to the MSA; log in with it again (after XCLIENT, if any).
    bool logInAgain = false;
};

struct AuthResult {
    enum class Status { Done, More, Fail, Temp };
    Status status = Status::Fail;
    std::string challenge;  // raw bytes for More (we base64 them)
    std::string username;   // for Done
    std::string reason;     // for the log only (never shown to the client)
};

enum class UpstreamFailure { Connect, Tls, Verify, Protocol, Refused, Lost, Timeout };
static_assert(kUpstreamErrorKinds.size() == static_cast<std::size_t>(UpstreamFailure::Timeout) + 1,
              "one metrics label per UpstreamFailure");

class ClientProtocolHost {
public:
    virtual ~ClientProtocolHost() = default;
    virtual void sendToClient(std::string_view bytes) = 0;
    // The 220 to STARTTLS has been queued: flush it, then run the TLS handshake.  The engine
    // has already thrown away any bytes pipelined behind STARTTLS.
    virtual void startTls() = 0;
    // Backend "sasl": run a SASL step off the event loop; answer with onAuthResult().
    virtual void authStart(const std::string& mechanism, const std::optional<std::string>& initial) = 0;
    virtual void authStep(const std::string& response) = 0;
    virtual void authCancel() = 0;
    // Connect to the MSA and establish the identity; answer with onUpstreamReady() or
    // onUpstreamFailed().  With backend "upstream" the AUTH exchange follows via upstreamSend.
    virtual void upstreamOpen(const UpstreamIdentity& identity) = 0;
    virtual void upstreamSend(std::string_view bytes) = 0;
    // Drops the MSA connection at once: a DATA in progress is aborted without its terminator.
    virtual void upstreamAbort() = 0;
    // Flush what was sent to the client, then close both sides.
    virtual void closeClient(const std::string& reason) = 0;
    // Idle timeout for the client's next bytes; 0 = none (we are the ones who must answer).
    virtual void setClientTimeout(int seconds) = 0;
    // How long to wait for the MSA's next reply; 0 = no reply is owed.
    virtual void setUpstreamTimeout(int seconds) = 0;
    virtual void logInfo(const std::string& line) = 0;
    virtual void logWarning(const std::string& line) = 0;
    // Counters for the status endpoint; nullptr: nothing is counted (unit-test fakes).
    virtual Metrics* metrics() { return nullptr; }
    // AUTH succeeded (here or at the MSA): the session now holds its slot for good.
    virtual void authenticated() {}
    // Latency histograms (metrics.h): the engine has no clock, the host keeps it.  A customer's
    // AUTH command or response has been read and the exchange goes on with it (authLineRead);
    // the exchange ended in a verdict, 235, 535 or 4xx (authAnswered).  A relayed command went
    // to the MSA (upstreamCommandSent, `command` one of kRelayedCommands); its reply comes back
    // in order (RFC 2920), so the host times it from its own stream of replies.
    virtual void authLineRead() {}
    virtual void authAnswered(AuthOutcome outcome) { (void)outcome; }
    virtual void upstreamCommandSent(const char* command) { (void)command; }
    // The MSA's EHLO capabilities as last learned (probe or MSA session); nullptr while none
    // has answered yet.  Shapes the EHLO reply before AUTH.
    virtual const EhloCaps* knownMsaCaps() { return nullptr; }
    // The MSA accepted a message from `user` (empty: unknown): the migration report.
    virtual void messageAccepted(const std::string& user) { (void)user; }
    // The spambot trap (trap.h) saw `signal`.  The host logs it, applies tarpit and ban, and
    // returns the action taken; Reject and Ban make the engine refuse (554) and close.
    virtual TrapAction trapSignal(TrapSignal signal, const std::string& detail) {
        (void)signal;
        (void)detail;
        return TrapAction::Ignore;
    }
    // Compromised accounts (issue 12; io/session_accounts.cpp): the host keeps the per-user
    // counters (account_book.h), the engine decides (account_policy.h, client_accounts.cpp).
    // `user` is the canonical name.  What the engine holds (a MAIL or RCPT sent, not yet
    // answered) counts against the limit until it settles it.
    virtual AccountView accountView(const std::string& user) { (void)user; return {}; }
    virtual void accountHold(const std::string& user, SendingKind kind) { (void)user; (void)kind; }
    virtual void accountSettle(const std::string& user, SendingKind kind, bool accepted) {
        (void)user; (void)kind; (void)accepted;
    }
    // A successful AUTH (accounts.places): recorded; the view after it.
    virtual AccountView accountLogin(const std::string& user) { (void)user; return {}; }
    // A MAIL or RCPT refused at the limit: the host flags the account.
    virtual void accountLimited(const std::string& user, const SendingRefusal& refusal) { (void)user; (void)refusal; }
    // accounts.passwords: judge the password off the loop, answer with onPasswordChecked().
    // The host wipes its copy right after the check and keeps nothing of it.
    virtual void checkPassword(const std::string& user, const std::string& password) { (void)user; (void)password; }
};

class ClientProtocol {
public:
    enum class State {
        Command,           // reading commands (pre-TLS, pre-AUTH or relaying)
        TlsHandshake,      // 220 sent to STARTTLS, waiting for the handshake
        AuthBackend,       // a SASL step is running in the backend (or the MSA)
        AuthResponse,      // 334 sent, waiting for the client's response line
        UpstreamOpening,   // connecting to the MSA (after AUTH, or for backend "upstream")
        DataBody,          // streaming the message body to the MSA
        Closed,
    };

    struct Counters {
        unsigned commands = 0;
        unsigned errors = 0;
        unsigned authFailures = 0;
        unsigned messages = 0;     // accepted by the MSA
        unsigned rejected = 0;     // messages refused (by us or the MSA)
    };

    ClientProtocol(const Config& config, ClientEndpoint endpoint, ClientProtocolHost& host);

    // Sends the greeting (or, on an implicit-TLS listener, asks for the handshake first).
    void start();
    // Instead of start(): a TLS ClientHello came before any greeting on a STARTTLS listener (a
    // mail program set to "SSL" on port 25).  Served as on an implicit-TLS listener; the host
    // hands the ClientHello's bytes to the handshake.
    void startImplicitTls();
    void onClientData(std::string_view bytes);
    void onTlsEstablished();
    void onAuthResult(const AuthResult& result);
    void onUpstreamReady(const EhloCaps& caps);
    void onUpstreamReply(const Reply& reply);
    void onUpstreamFailed(UpstreamFailure kind, const std::string& detail);
    void onClientTimeout();
    // limits.pre_auth_timeout ran out before a successful AUTH: 421 and close.
    void onPreAuthDeadline(int seconds);
    // Sessions ran out (limits.max_sessions): this unauthenticated one makes room, 421 and close.
    void onShed();
    // Begun under stress (limits.stress_threshold): shorter idle timeouts until AUTH.
    void setStress(bool on) { stress_ = on; }
    // The customer went away (EOF or error).  Aborts an unfinished DATA upstream.
    void onClientGone(const std::string& why);
    // SIGTERM after the grace time: 421 4.3.2 unless a reply from the MSA is awaited.
    void onShutdown();
    // accounts.passwords: the check asked by checkPassword() is done.
    void onPasswordChecked(bool weak);
    // The DNSBL verdict for this client (dnsbl.decision = "mail"); before start().
    void setDnsblVerdict(const DnsblVerdict& verdict) { dnsbl_ = verdict; }

    State state() const { return state_; }
    bool authenticated() const { return authenticated_; }
    bool tls() const { return tls_; }
    const std::string& user() const { return user_; }
    const std::string& authMechanism() const { return authMech_; }  // of the last AUTH ("PLAIN")
    const std::string& helo() const { return helo_; }
    const Counters& counters() const { return counters_; }
    // True while no reply from the MSA is owed: a shutdown may close the session.
    bool idle() const;
    // Input received but not yet processed (the host stops reading above a bound).
    std::size_t bufferedInput() const { return reader_.buffered(); }

    // What a reply from the MSA answers, in order (RFC 2920: replies come back in order).
    enum class PendingKind { Mail, Rcpt, Data, DataEnd, Rset, Noop, Quit, EhloReset, AuthLine };
    // Whether `reply` can answer `kind` at all: the relay's guard against a shifted reply stream.
    static bool plausibleReply(PendingKind kind, const Reply& reply);
    static const char* pendingName(PendingKind kind);
    static const char* metricsName(PendingKind kind);  // the `command` label (kRelayedCommands)

private:
    struct Pending {
        PendingKind kind;
        std::string detail;  // the sender for Mail
        std::string after;   // our own replies to commands pipelined behind it (RFC 2920 order)
        bool accountHeld = false;  // a MAIL or RCPT held against the account's limit
    };

    void setState(State next);
    void processInput();
    // In state Command, whether the next line may be read now: not while the pipeline is full,
    // nor behind a DATA or AUTH line whose reply decides what the next bytes are.
    bool readyForLine() const;
    std::optional<LineResult> nextLine();  // a deferred command first; nullopt: it still waits
    void refuseLongLine();
    void refuseBadLineEnding();
    void handleLine(const std::string& line);
    void handleCommand(const Command& cmd);
    // The command table's gates, before a handler runs; true: the command was answered.
    bool refusedOutright(const Command& cmd);       // BDAT, and verbs we never serve
    bool refusedOutOfSequence(const Command& cmd);  // before STARTTLS, EHLO or AUTH
    void handleAuthResponse(const std::string& line);
    void feedData();

    void cmdHelo(const Command& cmd, bool extended);
    void cmdStartTls(const Command& cmd);
    void cmdAuth(const Command& cmd);
    void cmdMail(const Command& cmd);
    void cmdRcpt(const Command& cmd);
    void cmdData(const Command& cmd);
    void cmdQuit();
    void relayOrAnswerOk(PendingKind kind, const std::string& line);  // RSET, NOOP
    void relay(PendingKind kind, const std::string& line, std::string detail = {});
    // onUpstreamReply's steps.  replyInStep: false when the reply cannot answer what is
    // pending, and the session was closed for it.  passReplyOn: the reply (or our EHLO answer)
    // to the customer, then our replies held behind it.  applyReply: what it means for the
    // session; relayedAuthReplied for AUTH at the MSA, messageVerdict after "." (client_data.cpp).
    bool replyInStep(const Reply& msaReply);
    void passReplyOn(const Pending& done, const Reply& msaReply);
    void applyReply(const Pending& done, const Reply& msaReply);
    void relayedAuthReplied(const Reply& msaReply);
    void messageVerdict(const Reply& msaReply);

    // An AUTH response refused on its face, before any backend sees it (client_auth.cpp).
    struct AuthRefusal {
        int code;
        std::string text;     // after the code
        bool failure;         // counts as a failed AUTH (535), or only as an error (501)
        std::string reason;   // for the log
    };

    void beginSaslAuth(const std::string& mech, const std::optional<std::string>& initial);
    void beginRelayedAuth(const std::string& line);
    // Notes who the response names (user_, the replay credentials) and checks it: the same
    // checks for an initial response on the AUTH line and for a response after a 334.
    std::optional<AuthRefusal> captureCredentials(const std::string& decoded);
    std::optional<AuthRefusal> checkName(std::string_view name, bool authzid) const;
    void refuseAuth(const AuthRefusal& refusal);
    // The authenticated name travels to the MSA as XCLIENT LOGIN= (backend "sasl", login "xclient").
    bool sendsXclientLogin() const;
    void authSucceeded();
    void authVerdict(int code);  // the host's authAnswered for 235, 535 and 4xx (not 334 or 501)
    void markAuthenticated();  // the one place authenticated_ becomes true
    void authFailed(int code, const std::string& text, bool countsAsFailure);
    void openUpstream();
    bool canReopenUpstream() const;
    void finishData();
    void endTransaction();

    // Counters: a no-op without metrics (see ClientProtocolHost::metrics).
    template <typename F>
    void count(F f) {
        if (Metrics* m = host_.metrics()) {
            f(*m);
        }
    }
    std::string noticeLine(int code) const;  // "235-notice\r\n" or "" (migration.notice)
    void reply(int code, const std::string& text);
    void replyError(int code, const std::string& text);  // counts toward max_errors
    void close(const std::string& reason);
    void updateTimeout();
    std::string ehloReply(bool extended) const;

    const Config& config_;
    ClientEndpoint endpoint_;
    ClientProtocolHost& host_;
    State state_ = State::Command;
    LineReader reader_;
    std::optional<DataScanner> scanner_;
    Counters counters_;

    bool tls_ = false;
    bool ehloSeen_ = false;
    bool extended_ = false;   // EHLO rather than HELO
    std::string helo_;
    bool authenticated_ = false;
    // The name as typed during AUTH; once authenticated, the canonical identity (identity.h).
    std::string user_;
    std::string authMech_;
    int authResponses_ = 0;          // client responses seen in this AUTH exchange
    std::string replayUser_;         // PLAIN/LOGIN credentials, kept for login = "replay"
    std::string replayPassword_;
    std::string pendingAuthLine_;    // backend "upstream": the AUTH line to send once connected
    bool upstreamUp_ = false;
    EhloCaps msaCaps_;

    Fifo<Pending> pending_;
    bool inTransaction_ = false;     // MAIL accepted by the MSA
    std::string mailFrom_;
    unsigned rcptAccepted_ = 0;
    bool dataAborted_ = false;       // body refused by us: upstream dropped
    bool closeAfterReplies_ = false; // QUIT or a fatal error: close once pending replies are out
    bool clientGone_ = false;        // the customer left after "."; wait for the MSA's verdict
    bool greeted_ = false;
    bool reopening_ = false;         // new MSA session after an aborted DATA: no 235 to send
    bool shutdownRequested_ = false;
    bool stress_ = false;
    bool answeringCommand_ = false;  // a customer line is being handled: its replies keep order
    std::size_t heldReplyBytes_ = 0; // in pending_[].after; input waits above the bound
    static constexpr std::size_t kMaxHeldReplyBytes = 16 * 1024;
    std::uint64_t lastMessageSize_ = 0;

    // Spambot trap and DNSBL (issue 3).  Each returns true when the session was refused.
    bool trapRefused(TrapSignal signal, const std::string& detail, const std::string& refusal);
    bool trapUnauthenticated(const Command& cmd);
    bool dnsblRefusesMail();  // dnsbl.block_authenticated: 550 at MAIL even after AUTH
    DnsblVerdict dnsbl_;
    bool sawInput_ = false;          // the first bytes are checked for a TLS/SSL hello

    // Compromised accounts (issue 12, client_accounts.cpp).
    // relay() for MAIL and RCPT: refused with 451 at the account's limit, else held against it.
    void relayCounted(PendingKind kind, const std::string& line, SendingKind sending, std::string detail = {});
    bool accountRefusesSending(SendingKind kind, const std::string& line);  // true: 451 sent, or deferred
    void accountReply(const Pending& done, bool positive);
    void accountEndTransaction();
    void accountReleaseAll();                      // the session ends: what is held goes
    bool accountRefusesLogin();                    // true: flagged for its places, action "refuse"
    void refuseFlaggedLogin();                     // 454 or 535 (accounts.places.refuse_code)
    bool accountRefusesMsaLogin();                 // backend "upstream", at the MSA's 235
    void startPasswordCheck();
    std::string passwordNoticeLine() const;        // "235-notice\r\n" for a weak password, or ""
    // The limit is reached only with this session's own commands under way: their replies
    // decide (a refused RCPT does not count), so the command waits for them in deferred_.
    bool accountAwaitsReplies(SendingKind kind) const;
    bool accountAwaitsReplies() const;
    std::optional<std::string> deferred_;
    bool accountTransactionHeld_ = false;          // the open transaction's message is held
    enum class PasswordCheck { None, Pending, Weak, Fine } passwordCheck_ = PasswordCheck::None;
    bool successHeld_ = false;  // the 235 waits for the password check (its notice goes first)
};

}  // namespace subproxy
