// The counters as JSON for /status (metrics.h: renderJson, jsonString).
#include <cstdio>
#include <sstream>

#include "ops/metrics.h"

namespace subproxy {

std::string jsonString(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20 || byte == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", byte);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

namespace {

std::string jsonMap(const std::map<std::string, std::uint64_t>& values) {
    std::string out = "{";
    for (const auto& [key, value] : values) {
        out += (out.size() > 1 ? ", " : "") + jsonString(key) + ": " + std::to_string(value);
    }
    return out + "}";
}

}  // namespace

std::string renderJson(const Metrics& m, const ScrapeFigures& live, std::int64_t now) {
    std::ostringstream o;
    o << "{\"uptime_seconds\": " << (now > m.startedAt ? now - m.startedAt : 0)
      << ", \"started_at\": " << m.startedAt << ", \"sessions_open\": " << m.sessionsOpen
      << ", \"sessions_total\": " << m.sessionsTotal << ", \"connections_refused\": " << m.connectionsRefused
      << ", \"sessions_shed\": " << m.sessionsShed
      << ", \"tls_handshakes\": " << m.tlsHandshakes << ", \"tls_handshake_failures\": " << m.tlsFailures
      << ", \"implicit_tls_detections\": " << m.implicitTlsDetections
      << ", \"auth_successes\": " << jsonMap(m.authSuccesses) << ", \"auth_failures\": " << jsonMap(m.authFailures)
      << ", \"auth_temporary_failures\": " << m.authTemporaryFailures
      << ", \"auth_backend_errors\": " << jsonMap(m.authBackendErrors)
      << ", \"auth_delayed_replies\": " << m.authDelayedReplies
      << ", \"messages_relayed\": " << m.messagesRelayed << ", \"messages_rejected\": " << m.messagesRejected
      << ", \"message_bytes_relayed\": " << m.bytesRelayed
      << ", \"upstream_errors\": " << jsonMap(m.upstreamErrors) << ", \"upstream_failovers\": " << m.upstreamFailovers
      << ", \"replies\": {";
    for (int k = 2; k <= 5; ++k) {
        o << (k > 2 ? ", " : "") << "\"" << k << "xx\": " << m.repliesByClass[k];
    }
    o << "}, \"bans\": " << m.bans << ", \"active_bans\": " << live.activeBans
      << ", \"ban_refusals\": " << m.banRefusals << ", \"trap_detections\": {";
    for (int s = 0; s < kTrapSignals; ++s) {
        o << (s ? ", " : "") << jsonString(trapSignalName(static_cast<TrapSignal>(s))) << ": " << m.trapDetections[s];
    }
    o << "}, \"dnsbl\": {";
    bool first = true;
    for (const auto& [zone, c] : m.dnsbl) {
        o << (first ? "" : ", ") << jsonString(zone) << ": {\"queries\": " << c.queries << ", \"hits\": " << c.hits
          << ", \"errors\": " << c.errors << "}";
        first = false;
    }
    o << "}, \"reloads\": " << m.reloads << ", \"reload_failures\": " << m.reloadFailures << "}";
    return o.str();
}

}  // namespace subproxy
