// The status endpoint (config group `status`): libevent's evhttp on a loopback address by
// default.  GET /metrics (Prometheus text), /status (JSON), /migration (JSON) and
// /migration.txt (the table `subproxy -r` prints).  Read-only; nothing here changes state.
#pragma once
#include <event2/event.h>
#include <event2/http.h>

#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "metrics.h"
#include "migration_report.h"

namespace subproxy {

struct EvhttpFree {
    void operator()(evhttp* http) const { evhttp_free(http); }
};

class StatusHttp {
public:
    // Binds at once (before privileges are dropped); throws std::runtime_error.
    // `extra` returns more JSON members for /status ("\"k\": v, ..." or "").
    StatusHttp(event_base* base, const StatusConfig& config, const Metrics& metrics,
               const MigrationReport& migration, std::function<std::string()> extra);
    std::string name() const { return name_; }

private:
    static void handle(evhttp_request* req, void* self);

    std::unique_ptr<evhttp, EvhttpFree> http_;
    const Metrics& metrics_;
    const MigrationReport& migration_;
    std::function<std::string()> extra_;
    std::string name_;
};

}  // namespace subproxy
