#include "ops/metrics.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <sstream>
#include <utility>

namespace subproxy {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), perBucket_(bounds_.size() + 1) {}

void Histogram::observe(double value) {
    // The first bucket whose upper bound holds the value ("le": less than or equal).
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    ++perBucket_[static_cast<std::size_t>(it - bounds_.begin())];
    ++count_;
    sum_ += value;
}

void Histogram::add(const Histogram& other) {
    for (std::size_t i = 0; i < perBucket_.size() && i < other.perBucket_.size(); ++i) {
        perBucket_[i] += other.perBucket_[i];
    }
    count_ += other.count_;
    sum_ += other.sum_;
}

std::uint64_t Histogram::cumulative(std::size_t i) const {
    std::uint64_t n = 0;
    for (std::size_t b = 0; b <= i && b < perBucket_.size(); ++b) {
        n += perBucket_[b];
    }
    return n;
}

Metrics::Metrics() {
    for (const char* mech : kAuthMechanisms) {
        authSuccesses[mech] = 0;
        authFailures[mech] = 0;
    }
    for (const char* kind : kAuthBackendErrorKinds) {
        authBackendErrors[kind] = 0;
    }
    for (const char* kind : kUpstreamErrorKinds) {
        upstreamErrors[kind] = 0;
    }
    for (const char* outcome : kAuthOutcomes) {
        authDuration.emplace(outcome, Histogram());
    }
    for (const char* command : kRelayedCommands) {
        upstreamReplyDuration.emplace(command, Histogram());
    }
}

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

void Metrics::dnsblZones(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
        dnsbl.emplace(name, DnsblCounts{});
    }
}

void Metrics::authAnswered(AuthOutcome outcome, double seconds) {
    authDuration.at(kAuthOutcomes[static_cast<std::size_t>(outcome)]).observe(seconds);
}

void Metrics::upstreamReplied(const std::string& command, double seconds) {
    upstreamReplyDuration.try_emplace(command).first->second.observe(seconds);
}

// ---------------------------------------------------------------------------------------------
// /proc

namespace {

// The fields of `text` separated by spaces or newlines.
std::vector<std::string_view> fields(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) {
            ++i;
        }
        const std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\n') {
            ++i;
        }
        if (i > start) {
            out.push_back(text.substr(start, i - start));
        }
    }
    return out;
}

bool toNumber(std::string_view text, std::uint64_t& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool parseProcStat(std::string_view stat, double ticksPerSecond, double pageSize, double bootTime,
                   ProcessFigures& out) {
    // "pid (comm) state ppid ...": comm is the process's name, which may contain ") ".
    const auto close = stat.rfind(')');
    if (close == std::string_view::npos || ticksPerSecond <= 0) {
        return false;
    }
    const auto f = fields(stat.substr(close + 1));
    // After comm, field 3 (state) is f[0]: proc(5)'s field n is f[n - 3].
    constexpr std::size_t kUtime = 14 - 3, kStime = 15 - 3, kStart = 22 - 3, kVsize = 23 - 3, kRss = 24 - 3;
    if (f.size() <= kRss) {
        return false;
    }
    std::uint64_t utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    if (!toNumber(f[kUtime], utime) || !toNumber(f[kStime], stime) || !toNumber(f[kStart], start) ||
        !toNumber(f[kVsize], vsize) || !toNumber(f[kRss], rss)) {
        return false;
    }
    out.cpuSeconds = static_cast<double>(utime + stime) / ticksPerSecond;
    out.startTimeSeconds = bootTime + static_cast<double>(start) / ticksPerSecond;
    out.virtualBytes = vsize;
    out.residentBytes = rss * static_cast<std::uint64_t>(pageSize);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format

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

// The shortest text that reads back as the same double ("0.25", "1", "1718000000.5").
std::string number(double value) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

using Labels = std::vector<std::pair<std::string, std::string>>;

class Writer {
public:
    void family(const std::string& name, const char* type, const std::string& help) {
        out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string& name, const Labels& labels, const std::string& value) {
        out_ << name;
        if (!labels.empty()) {
            out_ << '{';
            for (std::size_t i = 0; i < labels.size(); ++i) {
                out_ << (i ? "," : "") << labels[i].first << "=\"" << labelValue(labels[i].second) << '"';
            }
            out_ << '}';
        }
        out_ << ' ' << value << '\n';
    }
    void sample(const std::string& name, const Labels& labels, std::uint64_t value) {
        sample(name, labels, std::to_string(value));
    }
    void gauge(const std::string& name, const std::string& help, std::uint64_t value) {
        family(name, "gauge", help);
        sample(name, {}, value);
    }
    void counter(const std::string& name, const std::string& help, std::uint64_t value) {
        family(name, "counter", help);
        sample(name, {}, value);
    }
    void labelled(const std::string& name, const std::string& help, const std::string& label,
                  const std::map<std::string, std::uint64_t>& values) {
        family(name, "counter", help);
        for (const auto& [key, value] : values) {
            sample(name, {{label, key}}, value);
        }
    }
    void histograms(const std::string& name, const std::string& help, const std::string& label,
                    const std::map<std::string, Histogram>& values) {
        family(name, "histogram", help);
        for (const auto& [key, h] : values) {
            for (std::size_t i = 0; i < h.bounds().size(); ++i) {
                sample(name + "_bucket", {{label, key}, {"le", number(h.bounds()[i])}}, h.cumulative(i));
            }
            sample(name + "_bucket", {{label, key}, {"le", "+Inf"}}, h.count());
            sample(name + "_sum", {{label, key}}, number(h.sum()));
            sample(name + "_count", {{label, key}}, h.count());
        }
    }
    std::string str() const { return out_.str(); }

private:
    std::ostringstream out_;
};

void renderProcess(Writer& w, const ProcessFigures& p) {
    // Names, types and help as the Prometheus client libraries write them (client_golang's
    // process collector), so the usual dashboards and alerts apply unchanged.
    w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", {}, number(p.cpuSeconds));
    w.gauge("process_open_fds", "Number of open file descriptors.", p.openFds);
    w.gauge("process_max_fds", "Maximum number of open file descriptors.", p.maxFds);
    w.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtualBytes);
    w.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.residentBytes);
    w.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    w.sample("process_start_time_seconds", {}, number(p.startTimeSeconds));
}

// Compromised accounts (issue 12): every reason, limit and result from the start.
void renderAccounts(Writer& w, const AccountCounts& a) {
    w.family("subproxy_account_flags_total", "counter", "Accounts flagged, by reason (accounts group).");
    for (int i = 0; i < kFlagReasons; ++i) {
        w.sample("subproxy_account_flags_total", {{"reason", flagReasonName(static_cast<FlagReason>(i))}}, a.flags[i]);
    }
    w.family("subproxy_account_limit_refusals_total", "counter",
             "MAIL (messages) or RCPT (recipients) refused with 451 at the account's sending limit.");
    w.sample("subproxy_account_limit_refusals_total", {{"limit", "messages"}}, a.limitRefusals[0]);
    w.sample("subproxy_account_limit_refusals_total", {{"limit", "recipients"}}, a.limitRefusals[1]);
    w.counter("subproxy_account_login_refusals_total",
              "Logins refused: the account is flagged for its places and accounts.places.action is refuse.",
              a.loginRefusals);
    w.family("subproxy_account_password_checks_total", "counter", "Password strength checks after AUTH, by result.");
    const char* results[] = {"weak", "ok", "error"};
    for (int i = 0; i < 3; ++i) {
        w.sample("subproxy_account_password_checks_total", {{"result", results[i]}}, a.passwordChecks[i]);
    }
}

// The families by topic, in the order of subproxy(8)'s table.
void renderSessions(Writer& w, const Metrics& m, const ScrapeFigures& live) {
    w.gauge("subproxy_open_sessions", "Customer sessions open now.", m.sessionsOpen);
    w.counter("subproxy_sessions_total", "Customer sessions accepted.", m.sessionsTotal);
    if (!live.workerSessions.empty()) {
        // How the kernel spreads connections over the event loops (SO_REUSEPORT): a worker far
        // behind the others means a few clients hold most sessions.
        w.family("subproxy_worker_sessions_total", "counter", "Customer sessions accepted, by event loop (workers).");
        for (std::size_t i = 0; i < live.workerSessions.size(); ++i) {
            w.sample("subproxy_worker_sessions_total", {{"worker", std::to_string(i)}}, live.workerSessions[i]);
        }
    }
    w.counter("subproxy_refused_connections_total",
              "Connections refused at accept (limits, access lists, bans, shutdown, mail loop).", m.connectionsRefused);
    w.counter("subproxy_shed_sessions_total",
              "Unauthenticated sessions closed to make room at limits.max_sessions.", m.sessionsShed);
    w.counter("subproxy_tls_handshakes_total", "TLS handshakes with customers completed.", m.tlsHandshakes);
    w.counter("subproxy_tls_handshake_failures_total", "TLS handshakes with customers that failed.", m.tlsFailures);
    w.counter("subproxy_implicit_tls_detections_total",
              "TLS ClientHellos on STARTTLS listeners, served as implicit TLS.", m.implicitTlsDetections);
}

void renderAuth(Writer& w, const Metrics& m) {
    w.labelled("subproxy_auth_successes_total", "Successful AUTH exchanges by mechanism.", "mechanism",
               m.authSuccesses);
    w.labelled("subproxy_auth_failures_total", "AUTH exchanges refused (wrong credentials) by mechanism.",
               "mechanism", m.authFailures);
    w.counter("subproxy_auth_temporary_failures_total", "AUTH exchanges answered 454 (backend or MSA unavailable).",
              m.authTemporaryFailures);
    w.labelled("subproxy_auth_backend_errors_total",
               "Password checks the backend could not make (answered 454, not counted against the customer).",
               "kind", m.authBackendErrors);
    w.counter("subproxy_auth_delayed_replies_total", "AUTH failure replies held back by the guard.",
              m.authDelayedReplies);
    w.counter("subproxy_auth_cache_hits_total",
              "PLAIN and LOGIN successes answered from the credential cache (auth.cache_ttl), without the backend.",
              m.authCacheHits);
    w.histograms("subproxy_auth_duration_seconds",
                 "Time from the customer's last AUTH line to the verdict (password backend or MSA included, "
                 "the guard's penalty delay excluded), by result.",
                 "result", m.authDuration);
}

void renderRelay(Writer& w, const Metrics& m) {
    w.counter("subproxy_relayed_messages_total", "Messages accepted by the MSA.", m.messagesRelayed);
    w.counter("subproxy_rejected_messages_total", "Messages refused by the proxy or the MSA.", m.messagesRejected);
    w.counter("subproxy_relayed_message_bytes_total", "Bytes of the messages accepted by the MSA.", m.bytesRelayed);
    w.labelled("subproxy_upstream_errors_total", "Failed MSA sessions by kind.", "kind", m.upstreamErrors);
    w.counter("subproxy_upstream_failovers_total",
              "MSA hosts that failed before the session was ready, the next upstream.host being tried.",
              m.upstreamFailovers);
    w.histograms("subproxy_upstream_reply_duration_seconds",
                 "Time from relaying a command to the MSA to its reply, by command (end_of_data: the "
                 "MSA's verdict on a message).",
                 "command", m.upstreamReplyDuration);
    w.family("subproxy_replies_total", "counter", "SMTP replies sent to customers by class.");
    for (int k = 2; k <= 5; ++k) {
        w.sample("subproxy_replies_total", {{"class", std::to_string(k) + "xx"}}, m.repliesByClass[k]);
    }
}

void renderDefence(Writer& w, const Metrics& m, const ScrapeFigures& live) {
    w.counter("subproxy_bans_total", "Client addresses (or IPv6 prefixes) banned, for AUTH failures or by the trap.",
              m.bans);
    w.gauge("subproxy_active_bans", "Bans in force now.", live.activeBans);
    w.counter("subproxy_ban_refusals_total", "Connections refused because the client is banned.", m.banRefusals);
    w.family("subproxy_trap_detections_total", "counter", "Spambot trap detections by signal.");
    for (int s = 0; s < kTrapSignals; ++s) {
        w.sample("subproxy_trap_detections_total", {{"signal", trapSignalName(static_cast<TrapSignal>(s))}},
                 m.trapDetections[s]);
    }
    if (!m.dnsbl.empty()) {
        const std::pair<const char*, std::uint64_t Metrics::DnsblCounts::*> kinds[] = {
            {"queries", &Metrics::DnsblCounts::queries},
            {"hits", &Metrics::DnsblCounts::hits},
            {"errors", &Metrics::DnsblCounts::errors}};
        const char* const help[] = {"Client addresses looked up in the DNSBL/DNSWL zone (DNS or cached answer).",
                                    "Lookups the zone listed (its filters matched).",
                                    "Lookups the zone gave no usable answer to (timeout, error, refusal)."};
        for (std::size_t k = 0; k < 3; ++k) {
            const std::string name = std::string("subproxy_dnsbl_") + kinds[k].first + "_total";
            w.family(name, "counter", help[k]);
            for (const auto& [zone, counts] : m.dnsbl) {
                w.sample(name, {{"zone", zone}}, counts.*kinds[k].second);
            }
        }
    }
}

void renderOperations(Writer& w, const Metrics& m) {
    w.counter("subproxy_reloads_total", "Successful configuration reloads (SIGHUP).", m.reloads);
    w.counter("subproxy_reload_failures_total", "Rejected configuration reloads (SIGHUP).", m.reloadFailures);
    renderAccounts(w, m.accounts);
    w.gauge("subproxy_state_backend_up",
            "1 while the shared state's server (state.backend \"redis\") is reachable; always 1 when local.",
            m.stateBackendUp);
    w.counter("subproxy_state_backend_errors_total",
              "Failed connections to the shared state's server, and commands it refused or left unanswered.",
              m.stateBackendErrors);
    w.counter("subproxy_state_backend_dropped_updates_total",
              "Updates for the shared state dropped, oldest first, from the full replay queue during an outage.",
              m.stateBackendDropped);
    w.gauge("subproxy_state_backend_queued_updates",
            "Updates for the shared state waiting for its server to come back.", m.stateBackendQueued);
}

}  // namespace

std::string renderPrometheus(const Metrics& m, const ScrapeFigures& live) {
    Writer w;
    w.family("subproxy_build_info", "gauge", "Always 1; the version label names the running build.");
    w.sample("subproxy_build_info", {{"version", SUBPROXY_VERSION}}, 1);
    w.gauge("subproxy_up", "1 while the proxy runs.", 1);
    if (live.process) {
        renderProcess(w, *live.process);
    }
    renderSessions(w, m, live);
    renderAuth(w, m);
    renderRelay(w, m);
    renderDefence(w, m, live);
    renderOperations(w, m);
    return w.str();
}

std::string renderMigrationPrometheus(const std::vector<MigrationPortFigures>& ports) {
    Writer w;
    w.family("subproxy_migration_users", "gauge",
             "Distinct users who submitted through the dialled port today (UTC day).");
    for (const auto& p : ports) {
        w.sample("subproxy_migration_users", {{"port", std::to_string(p.port)}}, p.usersToday);
    }
    w.family("subproxy_migration_submissions_total", "counter",
             "Submissions through the dialled port (kept in migration.state_file across restarts).");
    for (const auto& p : ports) {
        w.sample("subproxy_migration_submissions_total", {{"port", std::to_string(p.port)}}, p.submissions);
    }
    return w.str();
}

// ---------------------------------------------------------------------------------------------
// JSON

}  // namespace subproxy
