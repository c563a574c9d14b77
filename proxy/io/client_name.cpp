// Forward-confirmed reverse DNS.  See client_name.h.
#include "io/client_name.h"

#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

#include "io/nameservers.h"
#include "wire/host_name.h"
#include "wire/text_util.h"

namespace subproxy {

namespace {

bool permanentFailure(int result) {
    // NXDOMAIN and an empty answer: there is no such record.  Everything else (SERVFAIL,
    // REFUSED, a timeout) may be over in a minute: Postfix's [TEMPUNAVAIL].
    return result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA || result == DNS_ERR_NONE;
}

}  // namespace

std::string ClientName::xclientValue() const {
    switch (status) {
    case Status::Confirmed:
        return name;
    case Status::TempUnavailable:
        return "[TEMPUNAVAIL]";
    case Status::Unavailable:
        break;
    }
    return "[UNAVAILABLE]";
}

ClientNameResolver::ClientNameResolver(event_base* base, const ClientNameConfig& config) : base_(base) {
    dns_ = evdns_base_new(base_, 0);
    if (!dns_) {
        throw std::runtime_error("cannot create the client name resolver");
    }
    // Each try is short; the session's own deadline (client_name.timeout_ms) bounds the whole.
    evdns_base_set_option(dns_, "timeout:", "1");
    evdns_base_set_option(dns_, "attempts:", "2");
    nameservers_ = config.nameservers;
    useNameservers(dns_, nameservers_, "client_name");
}

ClientNameResolver::~ClientNameResolver() { evdns_base_free(dns_, 1); }

void ClientNameResolver::reconfigure(const ClientNameConfig& config) {
    if (config.nameservers != nameservers_) {
        nameservers_ = config.nameservers;
        useNameservers(dns_, nameservers_, "client_name");
    }
}

std::unique_ptr<ClientNameLookup> ClientNameResolver::lookup(const IpAddress& client, int timeoutMs,
                                                             std::function<void(const ClientName&)> done) {
    return std::make_unique<ClientNameLookup>(*this, client, timeoutMs, std::move(done));
}

// ---------------------------------------------------------------------------------------------

ClientNameLookup::ClientNameLookup(ClientNameResolver& resolver, const IpAddress& client, int timeoutMs, Done done)
    : resolver_(resolver), client_(client), done_(std::move(done)) {
    timer_.reset(evtimer_new(resolver_.base_, &ClientNameLookup::timerCb, this));
    timeval wait{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
    if (!start(true)) {
        early_ = ClientName{ClientName::Status::TempUnavailable, {}, "cannot start the PTR query"};
        wait = timeval{0, 0};
    }
    evtimer_add(timer_.get(), &wait);
}

ClientNameLookup::~ClientNameLookup() {
    if (inFlight_) {
        inFlight_->owner = nullptr;  // its callback still runs (DNS_ERR_CANCEL) and frees it
        evdns_cancel_request(resolver_.dns_, inFlight_->request);
    }
}

bool ClientNameLookup::start(bool reverse) {
    auto* q = new Query{this, reverse};
    if (reverse) {
        if (client_.v6) {
            in6_addr a;
            std::memcpy(&a, client_.bytes.data(), 16);
            q->request = evdns_base_resolve_reverse_ipv6(resolver_.dns_, &a, 0, &ClientNameLookup::answerCb, q);
        } else {
            in_addr a;
            std::memcpy(&a, client_.bytes.data(), 4);
            q->request = evdns_base_resolve_reverse(resolver_.dns_, &a, 0, &ClientNameLookup::answerCb, q);
        }
    } else {
        q->request = client_.v6 ? evdns_base_resolve_ipv6(resolver_.dns_, ptrName_.c_str(), DNS_QUERY_NO_SEARCH,
                                                          &ClientNameLookup::answerCb, q)
                                : evdns_base_resolve_ipv4(resolver_.dns_, ptrName_.c_str(), DNS_QUERY_NO_SEARCH,
                                                          &ClientNameLookup::answerCb, q);
    }
    if (!q->request) {
        delete q;
        return false;
    }
    inFlight_ = q;
    return true;
}

void ClientNameLookup::answerCb(int result, char type, int count, int, void* addresses, void* arg) {
    auto* q = static_cast<Query*>(arg);
    if (ClientNameLookup* owner = q->owner) {
        owner->inFlight_ = nullptr;
        const bool reverse = q->reverse;
        delete q;  // before the owner may be destroyed by its own done callback
        reverse ? owner->ptrAnswer(result, type, count, addresses)
                : owner->forwardAnswer(result, type, count, addresses);
        return;
    }
    delete q;
}

void ClientNameLookup::ptrAnswer(int result, char type, int count, const void* addresses) {
    using S = ClientName::Status;
    if (result != DNS_ERR_NONE || type != DNS_PTR || count < 1 || !addresses) {
        finish(permanentFailure(result)
                   ? ClientName{S::Unavailable, {}, "no PTR record"}
                   : ClientName{S::TempUnavailable, {}, std::string("PTR lookup: ") + evdns_err_to_string(result)});
        return;
    }
    const char* answer = *static_cast<const char* const*>(addresses);  // evdns: a char* for PTR
    if (!answer || !validHostName(answer)) {
        finish(ClientName{S::Unavailable, {}, "PTR answer is not a host name: " + printable(answer ? answer : "", 80)});
        return;
    }
    ptrName_ = canonicalHostName(answer);
    if (!start(false)) {
        finish(ClientName{S::TempUnavailable, ptrName_, "cannot start the lookup of " + ptrName_});
    }
}

void ClientNameLookup::forwardAnswer(int result, char type, int count, const void* addresses) {
    using S = ClientName::Status;
    const char wanted = client_.v6 ? DNS_IPv6_AAAA : DNS_IPv4_A;
    const char* record = client_.v6 ? "AAAA" : "A";
    if (result != DNS_ERR_NONE || type != wanted || count < 1 || !addresses) {
        finish(permanentFailure(result)
                   ? ClientName{S::Unavailable, ptrName_, ptrName_ + " has no " + record + " record"}
                   : ClientName{S::TempUnavailable, ptrName_,
                                ptrName_ + " " + record + " lookup: " + evdns_err_to_string(result)});
        return;
    }
    const std::size_t size = client_.v6 ? 16 : 4;
    const auto* bytes = static_cast<const unsigned char*>(addresses);
    for (int i = 0; i < count; ++i) {
        if (std::memcmp(bytes + i * size, client_.bytes.data(), size) == 0) {
            finish(ClientName{S::Confirmed, ptrName_, {}});
            return;
        }
    }
    // Anyone can publish any PTR name for their own addresses: unconfirmed, it is not a name.
    finish(ClientName{S::Unavailable, ptrName_, ptrName_ + " does not resolve to the address"});
}

void ClientNameLookup::timerCb(evutil_socket_t, short, void* self) {
    auto* lookup = static_cast<ClientNameLookup*>(self);
    if (lookup->early_.detail.empty()) {
        lookup->early_ = ClientName{ClientName::Status::TempUnavailable, lookup->ptrName_,
                                    "no answer within client_name.timeout_ms"};
    }
    lookup->finish(lookup->early_);
}

void ClientNameLookup::finish(ClientName result) {
    if (finished_) {
        return;
    }
    finished_ = true;
    evtimer_del(timer_.get());
    if (inFlight_) {
        inFlight_->owner = nullptr;
        evdns_cancel_request(resolver_.dns_, inFlight_->request);
        inFlight_ = nullptr;
    }
    Done done = std::move(done_);
    done(result);  // last: the session may destroy this lookup from here
}

}  // namespace subproxy
