// Session, the MSA's half: opening the MSA session, relaying to it, and its replies and
// failures back to the engine.
#include "wire/identity.h"
#include "io/server.h"
#include "io/session.h"
#include "wire/text_util.h"

namespace subproxy {

void Session::upstreamOpen(const UpstreamIdentity& identity) {
    awaitedReplies_.clear();  // a new MSA session answers none of the old one's commands
    if (upstream_ || waitingUpstream_) {
        upstreamAbort();
    }
    if (namePending_) {
        waitingUpstream_ = std::make_unique<UpstreamIdentity>(identity);  // opened by clientNameKnown(), within client_name.timeout_ms
        return;
    }
    openUpstream(identity);
}

void Session::openUpstream(UpstreamIdentity identity) {
    identity.client.name = clientName_;
    const Config& config = runtime_->config;
    upstream_ = std::make_unique<Upstream>(server_.base(), server_.dns(), runtime_->clientTls.get(), config,
                                           identity, config.auth.backend == AuthBackend::Sasl, *this);
    upstream_->start();
}

void Session::lookUpClientName() {
    const ClientNameConfig& config = runtime_->config.clientName;
    if (!config.lookup) {
        return;
    }
    namePending_ = true;
    nameLookup_ = server_.clientNames().lookup(endpoint_.ip, config.timeoutMs,
                                               [this](const ClientName& name) { clientNameKnown(name); });
}

void Session::clientNameKnown(const ClientName& name) {
    namePending_ = false;  // nameLookup_ stays: it is still on the stack
    clientName_ = name.status == ClientName::Status::Confirmed ? name.name : name.xclientValue();
    if (name.status == ClientName::Status::Confirmed) {
        logInfo("client name " + name.name + " (forward-confirmed)");
    } else {
        logInfo("client name unknown " + name.xclientValue() + ": " + name.detail);
    }
    if (waitingUpstream_ && !closing_) {
        UpstreamIdentity identity = std::move(*waitingUpstream_);
        waitingUpstream_.reset();
        openUpstream(std::move(identity));
    }
}

void Session::upstreamSend(std::string_view bytes) {
    if (upstream_) {
        upstream_->send(bytes);
        updateReading();
    }
}

void Session::upstreamAbort() {
    waitingUpstream_.reset();
    if (upstream_) {
        upstream_->shutdown();
        retired_.push_back(std::move(upstream_));
    }
}

void Session::setUpstreamTimeout(int seconds) {
    if (upstream_) {
        upstream_->setReplyTimeout(seconds);
    }
}

void Session::upstreamReady(const EhloCaps& caps) {
    // Finished lookups are not needed any more (their answers are kept); not on the stack here.
    if (!namePending_) {
        nameLookup_.reset();
    }
    if (dnsblDone_) {
        dnsbl_.reset();
    }
    logInfo("MSA session ready: " + upstream_->peerName() + " (" + upstream_->tlsSummary() + ")");
    server_.msaCaps().learned(caps, upstream_->peerName());
    protocol_.onUpstreamReady(caps);
    updateReading();
}

void Session::upstreamReply(const Reply& reply) {
    timeUpstreamReply();
    if (protocol_.state() == ClientProtocol::State::AuthBackend &&
        runtime_->config.auth.backend == AuthBackend::Upstream) {
        // Backend "upstream": the MSA judged the password; its 535 is held like ours.
        if (reply.code == 535 && holdAuthFailure(std::chrono::steady_clock::now())) {
            heldReply_ = reply;
            return;
        }
        if (reply.code == 235) {
            server_.guard().authSucceeded(userKey(protocol_.user(), defaultRealm(runtime_->config)));
        }
    }
    protocol_.onUpstreamReply(reply);
    updateReading();
}

void Session::upstreamFailed(UpstreamFailure kind, const std::string& detail) {
    upstreamAbort();
    protocol_.onUpstreamFailed(kind, detail);
    updateReading();
}

void Session::upstreamDrained() { updateReading(); }

void Session::upstreamFailover(const std::string& failed, const std::string& why, const std::string& next) {
    ++server_.metrics().upstreamFailovers;
    logWarning("MSA failover: " + failed + " failed: " + printable(why, 200) + "; trying the next upstream.host, " +
               next);
}

}  // namespace subproxy
