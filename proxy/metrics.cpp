#include "metrics.h"

#include <cstdio>
#include <initializer_list>
#include <sstream>

namespace subproxy {

void Metrics::reply(int code) {
    const int klass = code / 100;
    if (klass >= 2 && klass <= 5) {
        ++repliesByClass[klass];
    }
}

void Metrics::authResult(const std::string& mechanism, bool ok) {
    ++(ok ? authSuccesses : authFailures)[mechanism];
}

void Metrics::upstreamError(const std::string& kind) { ++upstreamErrors[kind]; }

void Metrics::authBackendError(const std::string& kind) { ++authBackendErrors[kind]; }

void Metrics::count(const std::string& name, const std::string& help, std::uint64_t n) {
    Extra& e = extra[name];
    if (e.help.empty()) {
        e.help = help;
    }
    e.value += n;
}

namespace {

// Label values: backslash, double quote and newline are escaped (exposition format).
std::string labelValue(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

class Writer {
public:
    void family(const std::string& name, const char* type, const std::string& help) {
        out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string& name, std::uint64_t value) { out_ << name << ' ' << value << '\n'; }
    void sample(const std::string& name, const std::string& label, const std::string& labelVal,
                std::uint64_t value) {
        out_ << name << '{' << label << "=\"" << labelValue(labelVal) << "\"} " << value << '\n';
    }
    void counter(const std::string& base, const std::string& help, std::uint64_t value) {
        family(base + "_total", "counter", help);
        sample(base + "_total", value);
    }
    void labelled(const std::string& base, const std::string& help, const std::string& label,
                  const std::map<std::string, std::uint64_t>& values,
                  std::initializer_list<const char*> always) {
        family(base + "_total", "counter", help);
        std::map<std::string, std::uint64_t> all = values;
        for (const char* key : always) {
            all.emplace(key, 0);  // a series that exists from the start makes rate() work
        }
        for (const auto& [key, value] : all) {
            sample(base + "_total", label, key, value);
        }
    }
    std::string str() const { return out_.str(); }

private:
    std::ostringstream out_;
};

}  // namespace

std::string renderPrometheus(const Metrics& m, std::int64_t now) {
    Writer w;
    w.family("subproxy_up", "gauge", "1 while the proxy runs.");
    w.sample("subproxy_up", 1);
    w.family("subproxy_uptime_seconds", "gauge", "Seconds since the proxy started.");
    w.sample("subproxy_uptime_seconds", static_cast<std::uint64_t>(now > m.startedAt ? now - m.startedAt : 0));
    w.family("subproxy_sessions_open", "gauge", "Customer sessions open now.");
    w.sample("subproxy_sessions_open", m.sessionsOpen);
    w.counter("subproxy_sessions", "Customer sessions accepted.", m.sessionsTotal);
    w.counter("subproxy_connections_refused", "Connections refused at accept (limits, shutdown, mail loop).",
              m.connectionsRefused);
    w.counter("subproxy_sessions_shed", "Unauthenticated sessions closed to make room at limits.max_sessions.",
              m.sessionsShed);
    w.counter("subproxy_tls_handshakes", "TLS handshakes with customers completed.", m.tlsHandshakes);
    w.counter("subproxy_tls_handshake_failures", "TLS handshakes with customers that failed.", m.tlsFailures);
    static const std::initializer_list<const char*> kMechs = {"PLAIN", "LOGIN", "CRAM-MD5"};
    w.labelled("subproxy_auth_successes", "Successful AUTH exchanges by mechanism.", "mechanism",
               m.authSuccesses, kMechs);
    w.labelled("subproxy_auth_failures", "AUTH exchanges refused (wrong credentials) by mechanism.",
               "mechanism", m.authFailures, kMechs);
    w.counter("subproxy_auth_temporary_failures", "AUTH exchanges answered 454 (backend or MSA unavailable).",
              m.authTemporaryFailures);
    w.labelled("subproxy_auth_backend_errors",
               "Password checks the backend could not make (answered 454, not counted against the customer).",
               "kind", m.authBackendErrors, {"error", "timeout"});
    w.counter("subproxy_messages_relayed", "Messages accepted by the MSA.", m.messagesRelayed);
    w.counter("subproxy_messages_rejected", "Messages refused by the proxy or the MSA.", m.messagesRejected);
    w.counter("subproxy_message_bytes_relayed", "Bytes of the messages accepted by the MSA.", m.bytesRelayed);
    w.labelled("subproxy_upstream_errors", "Failed MSA sessions by kind.", "kind", m.upstreamErrors,
               {"connect", "tls", "verify", "protocol", "refused", "lost", "timeout"});
    w.family("subproxy_replies_total", "counter", "SMTP replies sent to customers by class.");
    for (int k = 2; k <= 5; ++k) {
        w.sample("subproxy_replies_total", "class", std::to_string(k) + "xx", m.repliesByClass[k]);
    }
    w.counter("subproxy_reloads", "Successful configuration reloads (SIGHUP).", m.reloads);
    w.counter("subproxy_reload_failures", "Rejected configuration reloads (SIGHUP).", m.reloadFailures);
    for (const auto& [name, e] : m.extra) {
        w.counter("subproxy_" + name, e.help, e.value);
    }
    return w.str();
}

std::string renderMigrationPrometheus(const std::vector<MigrationPortFigures>& ports) {
    Writer w;
    w.family("subproxy_migration_users", "gauge",
             "Distinct users who submitted through the dialled port today (UTC day).");
    for (const auto& p : ports) {
        w.sample("subproxy_migration_users", "port", std::to_string(p.port), p.usersToday);
    }
    w.family("subproxy_migration_submissions_total", "counter",
             "Submissions through the dialled port (kept in migration.state_file across restarts).");
    for (const auto& p : ports) {
        w.sample("subproxy_migration_submissions_total", "port", std::to_string(p.port), p.submissions);
    }
    return w.str();
}

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

std::string renderJson(const Metrics& m, std::int64_t now) {
    std::ostringstream o;
    o << "{\"uptime_seconds\": " << (now > m.startedAt ? now - m.startedAt : 0)
      << ", \"started_at\": " << m.startedAt << ", \"sessions_open\": " << m.sessionsOpen
      << ", \"sessions_total\": " << m.sessionsTotal << ", \"connections_refused\": " << m.connectionsRefused
      << ", \"sessions_shed\": " << m.sessionsShed
      << ", \"tls_handshakes\": " << m.tlsHandshakes << ", \"tls_handshake_failures\": " << m.tlsFailures
      << ", \"auth_successes\": " << jsonMap(m.authSuccesses) << ", \"auth_failures\": " << jsonMap(m.authFailures)
      << ", \"auth_temporary_failures\": " << m.authTemporaryFailures
      << ", \"auth_backend_errors\": " << jsonMap(m.authBackendErrors)
      << ", \"messages_relayed\": " << m.messagesRelayed << ", \"messages_rejected\": " << m.messagesRejected
      << ", \"message_bytes_relayed\": " << m.bytesRelayed
      << ", \"upstream_errors\": " << jsonMap(m.upstreamErrors) << ", \"replies\": {";
    for (int k = 2; k <= 5; ++k) {
        o << (k > 2 ? ", " : "") << "\"" << k << "xx\": " << m.repliesByClass[k];
    }
    o << "}, \"reloads\": " << m.reloads << ", \"reload_failures\": " << m.reloadFailures;
    for (const auto& [name, e] : m.extra) {
        o << ", " << jsonString(name) << ": " << e.value;
    }
    o << "}";
    return o.str();
}

}  // namespace subproxy
