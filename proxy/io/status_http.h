// The status endpoint (config group `status`): a small HTTP/1.0 server on a loopback address by
// default, or on a unix socket.  GET /metrics (Prometheus text) and /status (JSON) for anyone
// who can connect; /migration (JSON) and /migration.txt (the tables `subproxy -r` prints) list
// customers' logins and addresses, so over TCP they need status.token (a unix socket's file
// permissions guard it instead).  Read-only; nothing here changes state.  Bounded by
// request_server.h: status.max_connections at once, 8 KiB requests, 10 s per connection.
#pragma once
#include <event2/event.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ops/config.h"
#include "wire/http_request.h"
#include "ops/metrics.h"
#include "ops/migration_report.h"
#include "io/locked.h"
#include "io/request_server.h"

namespace subproxy {

class StatusHttp {
public:
    // Binds at once (before privileges are dropped); a unix socket is given to uid/gid (-1:
    // unchanged).  Throws std::runtime_error.  `extra` returns more JSON members for /status;
    // `activeBans` the number of bans in force, asked at every scrape.
    // `metrics` adds up every worker's counters (and fills in how many sessions each accepted).
    using MetricsSource = std::function<Metrics(std::vector<std::uint64_t>* perWorker)>;
    StatusHttp(event_base* base, const StatusConfig& config, MetricsSource metrics,
               Locked<MigrationReport>& migration, std::function<std::string()> extra,
               std::function<std::uint64_t()> activeBans,
               uid_t uid = static_cast<uid_t>(-1), gid_t gid = static_cast<gid_t>(-1));
    std::string name() const { return name_; }
    std::string url() const;  // for the start-up log line

private:
    std::optional<std::string> answer(std::string_view input) const;
    std::string page(const HttpRequest& request) const;

    MetricsSource metrics_;
    Locked<MigrationReport>& migration_;
    std::function<std::string()> extra_;
    std::function<std::uint64_t()> activeBans_;
    StatusConfig config_;
    std::string name_;
    std::unique_ptr<RequestServer> server_;
};

}  // namespace subproxy
