// Learning the MSA's capabilities.  See msa_caps.h.
#include "io/msa_caps.h"

#include <algorithm>

#include "os/log.h"
#include "io/server.h"
#include "wire/text_util.h"

namespace subproxy {

MsaCaps::MsaCaps(event_base* base, evdns_base* dns)
    : base_(base), dns_(dns), timer_(event_new(base, -1, EV_PERSIST, &MsaCaps::timerCb, this)) {}

MsaCaps::~MsaCaps() = default;

void MsaCaps::configure(std::shared_ptr<const Runtime> runtime) {
    const UpstreamConfig& next = runtime->config.upstream;
    const bool sameMsa = runtime_ && runtime_->config.upstream.hosts == next.hosts &&
                         runtime_->config.upstream.port == next.port && runtime_->config.upstream.tls == next.tls;
    // Called from the loop, never from the probe's callbacks: the old probe (and the old
    // configuration it refers to) can go at once.
    probe_.reset();
    retired_.clear();
    runtime_ = std::move(runtime);
    enabled_ = std::find(next.hosts.begin(), next.hosts.end(), "original") == next.hosts.end();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!sameMsa || !enabled_) {
            caps_.reset();
            advertised_.clear();
            lastError_.clear();
        }
        learning_ = enabled_;
        maxMessageSize_ = runtime_->config.limits.maxMessageSize;
    }
    event_del(timer_.get());
    if (!enabled_) {
        logInfo("upstream.host \"original\": the MSA's capabilities are not probed; EHLO before AUTH "
                "advertises our own SIZE and 8BITMIME");
        return;
    }
    if (next.probeInterval > 0) {
        const timeval interval{next.probeInterval, 0};
        event_add(timer_.get(), &interval);
    }
    probe();
}

void MsaCaps::timerCb(evutil_socket_t, short, void* self) { static_cast<MsaCaps*>(self)->probe(); }

void MsaCaps::probe() {
    retired_.clear();  // never from a probe callback: only the timer and configure() get here
    if (!enabled_ || probe_) {
        return;  // one probe at a time; a slow one is bounded by upstream.connect_timeout
    }
    quitSent_ = false;
    const Config& config = runtime_->config;
    probe_ = std::make_unique<Upstream>(base_, dns_, runtime_->clientTls.get(), config, UpstreamIdentity{}, false,
                                        *this, UpstreamDialog::Purpose::Probe);
    probe_->start();  // may fail at once: upstreamFailed() then retires it
}

void MsaCaps::finishProbe() {
    if (probe_) {
        probe_->shutdown();
        retired_.push_back(std::move(probe_));
    }
}

void MsaCaps::upstreamReady(const EhloCaps& caps) {
    record(caps, "probe of ", probe_->peerName());
    quitSent_ = true;
    probe_->send("QUIT\r\n");
    probe_->setReplyTimeout(runtime_->config.upstream.connectTimeout);
}

void MsaCaps::upstreamReply(const Reply&) {
    finishProbe();  // the 221 to our QUIT
}

void MsaCaps::upstreamFailed(UpstreamFailure, const std::string& detail) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!quitSent_ && detail != lastError_) {
        // Logged once per distinct failure, not every probe_interval while the MSA is down.
        logWarning("MSA capability probe failed: " + printable(detail, 200) +
                   (caps_ ? "; keeping the capabilities learned before"
                          : "; EHLO before AUTH advertises our own SIZE and 8BITMIME until the MSA answers"));
        lastError_ = detail;
    }
    lock.unlock();
    finishProbe();
}

std::shared_ptr<const EhloCaps> MsaCaps::known() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return caps_;
}

void MsaCaps::learned(const EhloCaps& caps, const std::string& peer) {
    record(caps, "MSA session with ", peer);  // every session: the text is built only to log a change
}

void MsaCaps::record(const EhloCaps& caps, const char* how, const std::string& peer) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!learning_) {
        return;
    }
    lastError_.clear();
    if (caps_ && caps_->keywords == caps.keywords) {
        return;  // every session tells us again: nothing new, nothing to log
    }
    caps_ = std::make_shared<const EhloCaps>(caps);
    std::string advertised;
    for (const std::string& keyword : capsBeforeAuth(&caps, maxMessageSize_)) {
        advertised += (advertised.empty() ? "" : " ") + keyword;
    }
    if (advertised != advertised_) {
        logInfo(std::string("MSA capabilities learned from ") + how + peer + "; EHLO before AUTH now advertises: " + advertised);
        advertised_ = advertised;
    }
}

}  // namespace subproxy
