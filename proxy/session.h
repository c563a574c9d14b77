// One customer connection: the libevent side of ClientProtocol.  Owns the customer's
// bufferevent (plain, then an OpenSSL filter after STARTTLS: the transport is swapped, the
// protocol never sees SSL*), the MSA connection and the SASL attempt in flight.
#pragma once
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <functional>

#include "client_protocol.h"
#include "upstream.h"

namespace subproxy {

class Server;
struct Runtime;
namespace sasl {
class Attempt;
}

class Session : public ClientProtocolHost, public UpstreamEvents {
public:
    Session(Server& server, std::uint64_t id, std::shared_ptr<const Runtime> runtime, evutil_socket_t fd,
            ClientEndpoint endpoint, std::string listenerName);
    ~Session() override;

    void start();
    void shutdown() { protocol_.onShutdown(); }
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

    // UpstreamEvents
    void upstreamReady(const EhloCaps& caps) override;
    void upstreamReply(const Reply& reply) override;
    void upstreamFailed(UpstreamFailure kind, const std::string& detail) override;
    void upstreamDrained() override;

private:
    struct AuthJob;
    void runAuth(std::function<AuthResult(sasl::Attempt&)> step);
    void authFinished(std::uint64_t generation, const AuthResult& result);
    void onRead();
    void onEvent(short what);
    void onWritten();
    void updateReading();
    void scheduleDestroy();
    static void readCb(bufferevent*, void* self);
    static void writeCb(bufferevent*, void* self);
    static void eventCb(bufferevent*, short what, void* self);
    static void authTimeoutCb(evutil_socket_t, short, void* self);
    static void destroyCb(evutil_socket_t, short, void* self);

    Server& server_;
    std::uint64_t id_;
    std::shared_ptr<const Runtime> runtime_;  // the config and TLS contexts this session began with
    ClientEndpoint endpoint_;
    std::string prefix_;  // "[1.2.3.4]:5678: " on every log line
    std::string listenerName_;
    BevPtr bev_;
    ClientProtocol protocol_;
    std::unique_ptr<Upstream> upstream_;
    std::vector<std::unique_ptr<Upstream>> retired_;  // shut down; freed outside their callbacks
    std::shared_ptr<AuthJob> auth_;
    std::uint64_t authGeneration_ = 0;
    event* authTimer_ = nullptr;
    event* destroy_ = nullptr;
    bool closing_ = false;
    bool readPaused_ = false;
    int clientTimeout_ = 0;
    std::optional<AuthResult> deferredAuth_;  // delivered from the timer, not re-entrantly
    std::string closeReason_;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace subproxy
