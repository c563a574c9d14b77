// One customer connection: the libevent side of ClientProtocol.  Owns the customer's Stream
// (plain, then TLS over the same socket after STARTTLS: the protocol never sees SSL*), the
// MSA connection and the SASL attempt in flight.  session.cpp: life and the customer's side;
// session_auth.cpp: SASL on the workers and the guard's penalty; session_upstream.cpp: the
// MSA's side; session_trap.cpp: the spambot trap; session_metrics.cpp: latency histograms.
#pragma once
#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <functional>

#include "engine/client_protocol.h"
#include "engine/fifo.h"
#include "io/client_name.h"
#include "io/defence.h"
#include "io/dnsbl.h"
#include "io/stream.h"
#include "io/upstream.h"

namespace subproxy {

class Server;
struct Runtime;
namespace sasl {
class Attempt;
}

class Session : public ClientProtocolHost, public UpstreamEvents, private StreamEvents {
public:
    Session(Server& server, std::uint64_t id, std::shared_ptr<const Runtime> runtime, evutil_socket_t fd,
            ClientEndpoint endpoint, std::string listenerName);
    ~Session() override;

    // `stress`: begun while sessions run short (limits.stress_threshold): shorter pre-AUTH timeouts.
    void start(bool stress);
    void shutdown() { protocol_.onShutdown(); }
    // Unauthenticated and not waiting for the password backend: may be closed to make room.
    bool sheddable() const;
    bool checkingPassword() const;
    void shed() { protocol_.onShed(); }
    std::uint64_t id() const { return id_; }
    bool idle() const { return protocol_.idle(); }

    // ClientProtocolHost
    void sendToClient(std::string_view bytes) override;
    void startTls() override;
    void authStart(const std::string& mechanism, const std::optional<std::string>& initial) override;
    void authStep(const std::string& response) override;
    void authCancel() override;
    void upstreamOpen(const UpstreamIdentity& identity) override;
    void upstreamSend(std::string_view bytes) override;
    void upstreamAbort() override;
    void closeClient(const std::string& reason) override;
    void setClientTimeout(int seconds) override;
    void setUpstreamTimeout(int seconds) override;
    void logInfo(const std::string& line) override;
    void logWarning(const std::string& line) override;
    Metrics* metrics() override;
    const EhloCaps* knownMsaCaps() override;
    void messageAccepted(const std::string& user) override;
    void authenticated() override;
    // Latency histograms (session_metrics.cpp).
    void authLineRead() override;
    void authAnswered(AuthOutcome outcome) override;
    void upstreamCommandSent(const char* command) override;
    TrapAction trapSignal(TrapSignal signal, const std::string& detail) override;  // session_trap.cpp
    // Compromised accounts (session_accounts.cpp).
    AccountView accountView(const std::string& user) override;
    void accountHold(const std::string& user, SendingKind kind) override;
    void accountSettle(const std::string& user, SendingKind kind, bool accepted) override;
    AccountView accountLogin(const std::string& user) override;
    void accountLimited(const std::string& user, const SendingRefusal& refusal) override;
    void checkPassword(const std::string& user, const std::string& password) override;

    // UpstreamEvents
    void upstreamReady(const EhloCaps& caps) override;
    void upstreamReply(const Reply& reply) override;
    void upstreamFailed(UpstreamFailure kind, const std::string& detail) override;
    void upstreamDrained() override;
    void upstreamFailover(const std::string& failed, const std::string& why, const std::string& next) override;

private:
    // StreamEvents: the customer's socket
    void streamData(std::string_view bytes) override;
    void streamWritten() override;
    void streamEvent(StreamEvent what) override;

    struct AuthJob;
    void runAuth(std::function<AuthResult(sasl::Attempt&)> step);
    void authFinished(std::uint64_t generation, const AuthResult& result);
    // 454 for a check the backend could not make (`kind` "error" or "timeout" in the metrics);
    // logged by the engine as a backend problem and never counted against the customer.
    void passwordBackendProblem(const char* kind, AuthResult result);
    void abandonAuthJob();
    // auth.cache_ttl (credential_store.h): PLAIN and LOGIN see the login name and password; a
    // pair the backend accepted a moment ago is answered from memory.  True when answered.
    bool answerFromCache(const std::string& login, const std::string& password);
    static void cachedAnswerCb(evutil_socket_t, short, void* arg);
    void clientGone(StreamEvent what);
    std::string who() const;  // "[1.2.3.4]:5678"
    void updateReading();
    void scheduleDestroy();
    void logDisconnect();
    static void authTimeoutCb(evutil_socket_t, short, void* self);
    // Password guessers (guard.h): a 535 is held for the penalty delay on this timer, so the
    // loop and every other session run on while this one waits.
    bool holdAuthFailure(std::chrono::steady_clock::time_point asked);
    void releaseHeldFailure();
    static void penaltyCb(evutil_socket_t, short, void* self);
    static void destroyCb(evutil_socket_t, short, void* self);
    static void preAuthCb(evutil_socket_t, short, void* self);
    // The MSA's reply to the oldest relayed command arrived: into its histogram.
    void timeUpstreamReply();
    // The customer's host name (client_name group): looked up from the start; the MSA session
    // waits for it (at most client_name.timeout_ms) because XCLIENT NAME= carries it.
    void lookUpClientName();
    void clientNameKnown(const ClientName& name);
    void openUpstream(UpstreamIdentity identity);

    // Spambot trap and connection filtering (session_trap.cpp): the greeting gate (greet wait
    // with a 220- teaser, DNSBL verdict), pregreet, fan-out, tarpit stutter.
    // Bytes kept from a client that talks before the greeting; reading stops beyond (a mail
    // program waits for the 220, so only a bot gets here).
    static constexpr std::size_t kMaxEarlyInput = 4096;
    void beginGreeting();
    void startGreetWait();   // the 220- teaser, when trap.greet_wait asks for it
    void endTlsDetect();     // no ClientHello came first: greet in plain text
    void serveImplicitTls();  // a ClientHello came first: TLS from byte one
    void finishGreeting();
    void earlyInput(std::string_view bytes);
    void dnsblVerdict(const DnsblVerdict& verdict, const std::vector<ZoneResult>& results);
    bool refuseByTrap(TrapSignal signal, const std::string& detail);
    bool stutter(std::string_view bytes);  // true: queued for the tarpit
    void flushStutter();
    static void greetTimerCb(evutil_socket_t, short, void* self);
    static void tlsDetectCb(evutil_socket_t, short, void* self);
    static void stutterCb(evutil_socket_t, short, void* self);

    Server& server_;
    std::shared_ptr<const EhloCaps> msaCaps_;  // what knownMsaCaps() last returned
    std::uint64_t id_;
    std::shared_ptr<const Runtime> runtime_;  // the config and TLS contexts this session began with
    ClientEndpoint endpoint_;
    std::string prefix_;  // "[1.2.3.4]:5678: " on every log line
    std::string listenerName_;
    std::unique_ptr<Stream> stream_;
    ClientProtocol protocol_;
    std::unique_ptr<Upstream> upstream_;
    std::vector<std::unique_ptr<Upstream>> retired_;  // shut down; freed outside their callbacks
    std::shared_ptr<AuthJob> auth_;
    std::string authMechanism_;               // of the AUTH under way
    std::optional<std::string> loginName_;    // LOGIN: the name, once sent (the password follows)
    // The login and its digest, while the backend judges them: cached if it says yes.
    std::optional<std::pair<std::string, std::string>> pendingCredential_;
    std::uint64_t authGeneration_ = 0;
    EventPtr authTimer_;  // made on first use (startTimer), as the other timers
    EventPtr destroy_;
    bool closing_ = false;
    int clientTimeout_ = 0;
    EventPtr penaltyTimer_;
    std::optional<AuthResult> heldAuth_;      // backend "sasl": the failure, until the penalty ends
    std::optional<Reply> heldReply_;          // backend "upstream": the MSA's 535, likewise
    std::chrono::steady_clock::time_point authAsked_;  // the client's last AUTH line reached SASL
    std::chrono::steady_clock::time_point authLineAt_;  // the client's last AUTH line was read
    std::optional<std::chrono::steady_clock::time_point> penaltyFrom_;  // a 535 held since then
    // Relayed commands awaiting the MSA's reply, oldest first: when each went, and its label.
    Fifo<std::pair<std::chrono::steady_clock::time_point, const char*>> awaitedReplies_;
    std::string closeReason_;
    // Trap state: ~100 bytes per session, plus the stutter queue while tarpitted.
    bool greeting_ = false;         // the gate is closed: TLS detection, greet wait or DNSBL
    bool tlsDetectOver_ = true;     // limits.tls_detect_ms has passed, or the first bytes came
    bool greetWaitOver_ = true;
    bool dnsblDone_ = true;
    bool trapExempt_ = false;       // access.allow or a DNSWL score at the allowlist threshold
    unsigned trapFired_ = 0;        // one bit per TrapSignal: each is acted on once
    // Bytes sent before the greeting (at most kMaxEarlyInput), or the ClientHello of a client
    // that speaks TLS at once (handed to the handshake by startTls).
    std::string early_;
    EventPtr greetTimer_;
    EventPtr tlsDetectTimer_;
    std::unique_ptr<DnsblLookup> dnsbl_;  // cancels its queries when the session goes
    std::unique_ptr<TarpitSlot> tarpit_;  // held while tarpitted (trap.tarpit_max)
    std::string stutterQueue_;
    EventPtr stutterTimer_;
    std::chrono::steady_clock::time_point tarpitSince_;
    std::chrono::steady_clock::time_point started_;
    EventPtr preAuthTimer_;  // limits.pre_auth_timeout: the total time allowed before AUTH
    int preAuthSeconds_ = 0;
    std::unique_ptr<ClientNameLookup> nameLookup_;  // cancels its queries when the session goes
    bool namePending_ = false;
    std::string clientName_;  // XCLIENT NAME= value once known; empty: "[UNAVAILABLE]"
    // upstreamOpen() while the name is pending; out of line: rare, and ~280 bytes.
    std::unique_ptr<UpstreamIdentity> waitingUpstream_;
};

}  // namespace subproxy
