// evdns glue for the DNSBL lookups.  See dnsbl.h.
#include "io/dnsbl.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>

#include "io/nameservers.h"
#include "os/log.h"

namespace subproxy {

namespace {

std::int64_t nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

DnsblResolver::DnsblResolver(event_base* base, const DnsblConfig& config, Locked<DnsblCache>& cache)
    : base_(base), cache_(cache) {
    dns_ = evdns_base_new(base_, 0);
    if (!dns_) {
        throw std::runtime_error("cannot create the DNSBL resolver");
    }
    // Each query gets a few seconds: the session's own deadline (dnsbl.timeout) bounds the
    // total, and a late zone counts as an error, never as a listing.
    evdns_base_set_option(dns_, "timeout:", "2");
    evdns_base_set_option(dns_, "attempts:", "2");
    setNameservers(config.nameservers);
}

DnsblResolver::~DnsblResolver() {
    // fail_requests = 1: every pending callback runs (DNS_ERR_SHUTDOWN) and frees its Query.
    evdns_base_free(dns_, 1);
}

void DnsblResolver::setNameservers(const std::vector<std::string>& nameservers) {
    nameservers_ = nameservers;
    useNameservers(dns_, nameservers, "dnsbl");
}

void DnsblResolver::reconfigure(const DnsblConfig& config) {
    if (config.nameservers != nameservers_) {
        setNameservers(config.nameservers);
    }
}

std::unique_ptr<DnsblLookup> DnsblResolver::lookup(const DnsblConfig& config, const IpAddress& client,
                                                   DnsblLookup::Done done) {
    return std::make_unique<DnsblLookup>(*this, config, client, std::move(done));
}

// ---------------------------------------------------------------------------------------------

DnsblLookup::DnsblLookup(DnsblResolver& resolver, const DnsblConfig& config, const IpAddress& client, Done done)
    : resolver_(resolver), config_(config), clientText_(formatIpAddress(client)), done_(std::move(done)) {
    timer_ = evtimer_new(resolver_.base_, &DnsblLookup::timerCb, this);
    results_.resize(config_.zones.size());
    const std::int64_t now = nowSeconds();
    for (std::size_t i = 0; i < config_.zones.size(); ++i) {
        const std::string name = dnsblQueryName(client, config_.zones[i].zone);
        const std::optional<ZoneResult> cached = resolver_.cache_.with([&](DnsblCache& cache) {
            const DnsblCache::Entry* hit = cache.find(name, now);
            return hit ? std::optional<ZoneResult>(evaluateZone(config_.zones[i], hit->answers)) : std::nullopt;
        });
        if (cached) {
            results_[i] = *cached;
            continue;
        }
        auto* q = new Query{this, i, name};
        inFlight_.push_back(q);
        ++resolver_.queriesSent_;
        q->request = evdns_base_resolve_ipv4(resolver_.dns_, name.c_str(), DNS_QUERY_NO_SEARCH,
                                             &DnsblLookup::answerCb, q);
        if (!q->request) {
            inFlight_.pop_back();
            delete q;
            results_[i] = ZoneResult{ZoneStatus::Error, 0, "cannot start the query for " + name};
        }
    }
    constructing_ = false;
    // Cached or not, the verdict goes out from the loop: the caller is still constructing.
    const timeval wait{inFlight_.empty() ? 0 : config_.timeout, 0};
    evtimer_add(timer_, &wait);
}

DnsblLookup::~DnsblLookup() {
    for (Query* q : inFlight_) {
        q->owner = nullptr;  // the callback still runs (DNS_ERR_CANCEL) and frees q
        evdns_cancel_request(resolver_.dns_, q->request);
    }
    event_free(timer_);
}

void DnsblLookup::answerCb(int result, char type, int count, int ttl, void* addresses, void* arg) {
    auto* q = static_cast<Query*>(arg);
    if (q->owner) {
        q->owner->answered(q, result, type, count, ttl, addresses);
    }
    delete q;
}

void DnsblLookup::answered(Query* q, int result, char type, int count, int ttl, const void* addresses) {
    inFlight_.erase(std::remove(inFlight_.begin(), inFlight_.end(), q), inFlight_.end());
    const DnsblZone& zone = config_.zones[q->zone];
    std::vector<std::uint32_t> answers;
    const std::int64_t now = nowSeconds();
    if (result == DNS_ERR_NONE && type == DNS_IPv4_A) {
        const auto* raw = static_cast<const std::uint32_t*>(addresses);
        for (int i = 0; i < count; ++i) {
            answers.push_back(ntohl(raw[i]));
        }
        // Cached for the record's TTL (bounded by dnsbl.max_ttl), as postscreen does.
        const int keep = std::min(std::max(ttl, 0), config_.maxTtl);
        if (keep > 0) {
            resolver_.cache_.with([&](DnsblCache& cache) { cache.put(q->name, answers, now + keep); });
        }
        results_[q->zone] = evaluateZone(zone, answers);
    } else if (result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA || result == DNS_ERR_NONE) {
        if (config_.negativeTtl > 0) {
            resolver_.cache_.with([&](DnsblCache& cache) { cache.put(q->name, {}, now + config_.negativeTtl); });
        }
        results_[q->zone] = ZoneResult{};
    } else {
        results_[q->zone] = ZoneResult{ZoneStatus::Error, 0,
                                       std::string("lookup of ") + q->name + " failed: " + evdns_err_to_string(result)};
    }
    if (inFlight_.empty() && !constructing_) {
        finish();
    }
}

void DnsblLookup::timerCb(evutil_socket_t, short, void* self) {
    auto* lookup = static_cast<DnsblLookup*>(self);
    // Past the deadline: zones that did not answer are errors (not listings).
    for (Query* q : lookup->inFlight_) {
        lookup->results_[q->zone] = ZoneResult{ZoneStatus::Error, 0, "no answer for " + q->name + " in time"};
        q->owner = nullptr;
        evdns_cancel_request(lookup->resolver_.dns_, q->request);
    }
    lookup->inFlight_.clear();
    lookup->finish();
}

void DnsblLookup::finish() {
    if (finished_) {
        return;
    }
    finished_ = true;
    evtimer_del(timer_);
    const DnsblVerdict verdict = scoreDnsbl(config_, results_, clientText_);
    // Last statement: `done` may destroy this lookup.
    done_(verdict, results_);
}

}  // namespace subproxy
