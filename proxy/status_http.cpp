#include "status_http.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <cstring>
#include <ctime>
#include <stdexcept>

namespace subproxy {

StatusHttp::StatusHttp(event_base* base, const StatusConfig& config, const Metrics& metrics,
                       const MigrationReport& migration, std::function<std::string()> extra)
    : http_(evhttp_new(base)), metrics_(metrics), migration_(migration), extra_(std::move(extra)) {
    name_ = (config.address.find(':') != std::string::npos ? "[" + config.address + "]" : config.address) + ":" +
            std::to_string(config.port);
    if (!http_) {
        throw std::runtime_error("status: cannot create the HTTP server");
    }
    // A scraper sends a small GET; anything big or slow is not one.
    evhttp_set_timeout(http_.get(), 10);
    evhttp_set_max_headers_size(http_.get(), 8192);
    evhttp_set_max_body_size(http_.get(), 0);
    evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http_.get(), &StatusHttp::handle, this);
    if (evhttp_bind_socket_with_handle(http_.get(), config.address.c_str(),
                                       static_cast<ev_uint16_t>(config.port)) == nullptr) {
        throw std::runtime_error("status: cannot listen on " + name_ + ": " + std::strerror(errno));
    }
}

void StatusHttp::handle(evhttp_request* req, void* arg) {
    auto* self = static_cast<StatusHttp*>(arg);
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    const char* rawPath = uri ? evhttp_uri_get_path(uri) : nullptr;
    const std::string path = rawPath ? rawPath : "/";
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    std::string body;
    std::string type = "application/json";
    if (path == "/metrics") {
        body = renderPrometheus(self->metrics_, now);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path == "/status" || path == "/") {
        std::string json = renderJson(self->metrics_, now);
        const std::string extra = self->extra_ ? self->extra_() : std::string();
        json.pop_back();  // the closing brace
        body = "{\"version\": \"" SUBPROXY_VERSION "\", " + (extra.empty() ? "" : extra + ", ") +
               "\"migration_submissions\": " + std::to_string(self->migration_.total()) +
               ", \"migration_users\": " + std::to_string(self->migration_.users().size()) +
               ", \"metrics\": " + json + "}}\n";
    } else if (path == "/migration") {
        body = self->migration_.json() + "\n";
    } else if (path == "/migration.txt") {
        body = self->migration_.table();
        type = "text/plain; charset=utf-8";
    } else {
        evhttp_send_error(req, HTTP_NOTFOUND, "not found: try /metrics, /status, /migration, /migration.txt");
        return;
    }
    evkeyvalq* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", type.c_str());
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, body.data(), body.size());
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

}  // namespace subproxy
