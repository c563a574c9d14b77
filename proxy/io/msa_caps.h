// What the MSA will take, learned on the event loop: its EHLO capabilities, from a probe
// (connect, EHLO, STARTTLS or implicit TLS as configured, EHLO, QUIT; no XCLIENT, no login) at
// start, at reload and every upstream.probe_interval seconds, and from every customer's MSA
// session.  The EHLO reply before AUTH is built from them (capsBeforeAuth in ehlo_caps.h): a
// mail program that reads EHLO only once learns there whether SMTPUTF8 and DSN may be used and
// how big a message may be.  Until the MSA has answered once, nothing changes.
// The probe runs on the control loop; learned() and known() are called from every event loop
// (the mutex guards what they share).
#pragma once
#include <event2/dns.h>
#include <event2/event.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wire/ehlo_caps.h"
#include "io/event_handles.h"
#include "io/upstream.h"

namespace subproxy {

struct Runtime;

class MsaCaps : public UpstreamEvents {
public:
    MsaCaps(event_base* base, evdns_base* dns);
    ~MsaCaps() override;

    // At start and at every reload: probe now with `runtime`'s upstream settings, then on the
    // timer.  Capabilities learned from another MSA (host, port or TLS changed) are forgotten.
    void configure(std::shared_ptr<const Runtime> runtime);
    // A customer's MSA session with `peer` ("host:port") is ready and saw `caps`.
    void learned(const EhloCaps& caps, const std::string& peer);
    // nullptr until the MSA has answered once (and always with upstream.host "original", where
    // each customer may reach another MSA).  Shared: a later probe replaces, never changes it.
    std::shared_ptr<const EhloCaps> known() const;

    // UpstreamEvents: the probe's connection.
    void upstreamReady(const EhloCaps& caps) override;
    void upstreamReply(const Reply& reply) override;
    void upstreamFailed(UpstreamFailure kind, const std::string& detail) override;
    void upstreamDrained() override {}

private:
    void probe();
    void finishProbe();  // from the probe's own callbacks: retired, freed at the next probe
    void record(const EhloCaps& caps, const char* how, const std::string& peer);
    static void timerCb(evutil_socket_t, short, void* self);

    event_base* base_;
    evdns_base* dns_;
    std::shared_ptr<const Runtime> runtime_;  // the probe's config and TLS context
    EventPtr timer_;
    bool enabled_ = false;
    std::unique_ptr<Upstream> probe_;
    std::vector<std::unique_ptr<Upstream>> retired_;
    bool quitSent_ = false;
    mutable std::mutex mutex_;  // guards what follows
    bool learning_ = false;     // enabled_, as the loops see it
    int maxMessageSize_ = 0;    // limits.max_message_size of the running configuration
    std::shared_ptr<const EhloCaps> caps_;
    std::string advertised_;  // the keywords before AUTH, as last logged
    std::string lastError_;   // the probe failure last logged (each is logged once)
};

}  // namespace subproxy
