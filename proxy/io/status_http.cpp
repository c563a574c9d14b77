#include "io/status_http.h"

#include <ctime>
#include <stdexcept>

#include "os/process_stats.h"

namespace subproxy {

namespace {

constexpr mode_t kSocketMode = 0660;  // the daemon's account and group (a monitoring agent in it)
const char* const kText = "text/plain; charset=utf-8";

}  // namespace

StatusHttp::StatusHttp(event_base* base, const StatusConfig& config, MetricsSource metrics,
                       Locked<MigrationReport>& migration, std::function<std::string()> extra,
                       std::function<std::uint64_t()> activeBans, uid_t uid, gid_t gid)
    : metrics_(std::move(metrics)),
      migration_(migration),
      extra_(std::move(extra)),
      activeBans_(std::move(activeBans)),
      config_(config) {
    RequestServer::Limits limits;
    limits.maxConnections = config.maxConnections;
    limits.busy = httpResponse(503, kText, "too many status connections (status.max_connections)\n");
    limits.tooLarge = httpResponse(413, kText, "request too large\n");
    auto handler = [this](std::string_view input) { return answer(input); };
    try {
        if (!config.socket.empty()) {
            name_ = config.socket;
            server_ = std::make_unique<RequestServer>(base, config.socket, kSocketMode, uid, gid, limits, handler);
        } else {
            name_ = (config.address.find(':') != std::string::npos ? "[" + config.address + "]" : config.address) +
                    ":" + std::to_string(config.port);
            server_ = std::make_unique<RequestServer>(base, config.address, config.port, limits, handler);
        }
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("status: ") + e.what());
    }
}

std::string StatusHttp::url() const {
    return config_.socket.empty() ? "http://" + name_ + "/metrics" : "unix:" + name_ + " (GET /metrics)";
}

std::optional<std::string> StatusHttp::answer(std::string_view input) const {
    const HttpParse parsed = parseHttpRequest(input);
    switch (parsed.status) {
    case HttpParse::Status::NeedMore:
        return std::nullopt;
    case HttpParse::Status::Bad:
        return httpResponse(400, kText, "bad request\n");
    case HttpParse::Status::Done:
        break;
    }
    return page(parsed.request);
}

std::string StatusHttp::page(const HttpRequest& request) const {
    const bool head = request.method == "HEAD";
    if (request.method != "GET" && !head) {
        return httpResponse(405, kText, "only GET and HEAD\n");
    }
    const std::string& path = request.path;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    ScrapeFigures live;
    live.activeBans = activeBans_ ? activeBans_() : 0;
    if (path == "/metrics") {
        live.process = readProcessFigures();
        const Metrics metrics = metrics_(&live.workerSessions);
        const auto ports = migration_.with([&](const MigrationReport& r) { return r.portFigures(now); });
        return httpResponse(200, "text/plain; version=0.0.4; charset=utf-8",
                            renderPrometheus(metrics, live) + renderMigrationPrometheus(ports), !head);
    }
    if (path == "/status" || path == "/") {
        std::string json = renderJson(metrics_(nullptr), live, now);
        const std::string extra = extra_ ? extra_() : std::string();
        json.pop_back();  // the closing brace
        const std::string figures = migration_.with([](const MigrationReport& r) {
            return "\"migration_submissions\": " + std::to_string(r.total()) +
                   ", \"migration_users\": " + std::to_string(r.distinctUsers()) +
                   ", \"migration_records\": " + std::to_string(r.records().size());
        });
        const std::string body = "{\"version\": \"" SUBPROXY_VERSION "\", " + (extra.empty() ? "" : extra + ", ") +
                                 figures + ", \"metrics\": " + json + "}}\n";
        return httpResponse(200, "application/json", body, !head);
    }
    if (path == "/migration" || path == "/migration.txt") {
        // Logins and client addresses: behind the token over TCP, behind file modes on a socket.
        if (config_.socket.empty()) {
            if (config_.token.empty()) {
                return httpResponse(403, kText,
                                    "the migration report lists customers' logins and addresses: set status.token "
                                    "(or status.socket) to serve it\n");
            }
            if (!httpAuthorized(request.authorization, config_.token)) {
                return httpResponse(401, kText, "send status.token as a Bearer token or as the Basic password\n");
            }
        }
        if (path == "/migration") {
            const std::string json = migration_.with([&](const MigrationReport& r) { return r.json({}, now); });
            return httpResponse(200, "application/json", json + "\n", !head);
        }
        // What `subproxy -r` and `subproxy -r --history` print, one after the other.
        const std::string text = migration_.with(
            [&](const MigrationReport& r) { return r.recordsText({}) + "\n" + r.historyText({}, now); });
        return httpResponse(200, kText, text, !head);
    }
    return httpResponse(404, kText, "not found: try /metrics, /status, /migration, /migration.txt\n");
}

}  // namespace subproxy
