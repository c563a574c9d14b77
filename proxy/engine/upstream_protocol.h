// The MSA-side handshake: pure protocol, no I/O.  Greeting, EHLO, STARTTLS (or implicit TLS),
// EHLO again, then the customer's identity: Postfix XCLIENT (EHLO once more after its 220) or
// the customer's own PLAIN/LOGIN credentials.  upstream.cpp runs it on a Stream (io/stream.h).
#pragma once
#include <string>
#include <vector>

#include "engine/client_protocol.h"
#include "ops/config.h"
#include "wire/ehlo_caps.h"
#include "wire/smtp_reply.h"

namespace subproxy {

class UpstreamDialog {
public:
    struct Action {
        std::string send;       // bytes for the MSA
        bool startTls = false;  // wrap the connection in TLS now
        bool ready = false;     // the session is ready for relaying; caps() is valid
        bool failed = false;
        UpstreamFailure failure = UpstreamFailure::Protocol;
        std::string detail;     // for the log
    };

    // Session: the whole handshake, for a customer.  Probe: only as far as the EHLO after TLS,
    // to learn the MSA's capabilities (no XCLIENT, no login); the caller then sends QUIT.
    enum class Purpose { Session, Probe };

    // `tlsActive`: implicit TLS is already up.  `sendLogin`: XCLIENT carries LOGIN= (backend
    // "sasl"); with backend "upstream" the customer authenticates to the MSA itself.
    UpstreamDialog(const UpstreamConfig& config, std::string ourHelo, UpstreamIdentity identity,
                   bool tlsActive, bool sendLogin, Purpose purpose = Purpose::Session);

    Action onReply(const Reply& reply);
    Action onTlsEstablished();
    const EhloCaps& caps() const { return caps_; }

private:
    enum class Step { Greeting, Ehlo, StartTls, TlsHandshake, EhloTls, Xclient, EhloXclient,
                      AuthPlain, AuthLoginUser, AuthLoginPassword, Ready };

    // onReply for the EHLO replies (before TLS, after it, after XCLIENT) and for XCLIENT's.
    Action onEhloReply(const Reply& reply);
    Action onXclientReply(const Reply& reply);
    Action identify();
    Action logIn();        // AUTH PLAIN (or LOGIN) with identity_'s credentials
    Action identified();   // after XCLIENT (if any): log in again if asked, else ready
    Action ehlo(const std::string& name, Step next);
    Action ehloAsCustomer();  // after XCLIENT: EHLO with the customer's HELO name
    Action sendNextXclient();
    Action becomeReady();
    Action fail(UpstreamFailure kind, const std::string& detail);
    static Action sending(std::string bytes);

    const UpstreamConfig& config_;
    std::string ourHelo_;
    UpstreamIdentity identity_;
    bool tlsActive_;
    bool sendLogin_;
    Purpose purpose_;
    Step step_ = Step::Greeting;
    EhloCaps caps_;
    std::vector<std::string> xclient_;  // XCLIENT commands still to send
};

// upstream.proxy_protocol: the PROXY v2 header that opens an MSA connection, naming the
// customer and the address it dialled; LOCAL when there is no customer (the capability probe).
std::string upstreamProxyHeader(const ClientEndpoint& client);

// The XCLIENT commands for `identity`, each under 512 octets, ADDR in the last one
// (XCLIENT_README).  Only attributes the MSA advertised are sent.
std::vector<std::string> buildXclient(const UpstreamIdentity& identity, const EhloCaps& caps, bool sendLogin);

}  // namespace subproxy
