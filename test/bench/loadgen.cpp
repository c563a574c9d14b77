// loadgen.cpp — the load generator and upstream sink of `make bench` (test/bench/bench.py).
//
//   loadgen sessions -p PORT [-c CONC] (-n TOTAL | -s SECONDS) [-j THREADS]
//       full submission sessions: EHLO, STARTTLS (TLS 1.3), EHLO, AUTH PLAIN, MAIL, RCPT, a
//       2 kB message, QUIT; latency of each (connect to 221), sessions/s, errors by reply
//   loadgen idle -p PORT -n TOTAL [-c CONC] [-H HOLD_SECONDS] [-j THREADS]
//       TOTAL sessions up to 235, held idle; prints a "ready" line when every login is settled,
//       holds, then QUITs each; counts failed logins and sessions lost while held
//   loadgen burst -p PORT -n TOTAL [-j THREADS]
//       TOTAL logins opened evenly within one second; counts 235 / 454 / other / connection errors
//       and the time to the last answer
//   loadgen sink -p PORT --cert PEM --key PEM [-j THREADS]
//       the upstream MSA (sink.cpp)
//
// Every result is one JSON line on stdout, with the generator's own CPU time (cpu_s): the
// driver shows it next to the proxy's, to show the generator was not the bottleneck.
#include "client.h"
#include "bench_io.h"
#include "sink.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: loadgen sessions|idle|burst -p PORT [-c CONC] [-n TOTAL] [-s SECONDS] [-H HOLD]\n"
                 "               [-j THREADS] [-u USER] [-w PASSWORD] [--timeout S] [--bytes N]\n"
                 "       loadgen sink -p PORT --cert PEM --key PEM [-j THREADS]\n");
    std::exit(2);
}

double cpuSeconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

std::string jsonErrors(const bench::Stats& st) {
    std::string out = "{";
    for (const auto& [what, n] : st.errors) {
        out += (out.size() > 1 ? ", \"" : "\"") + what + "\": " + std::to_string(n);
    }
    return out + "}";
}

void onReady(long held, long failed, double seconds) {
    std::printf("{\"event\": \"ready\", \"held\": %ld, \"failed\": %ld, \"open_s\": %.3f}\n", held, failed, seconds);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage();
    }
    std::string mode = argv[1];
    bench::Options opt;
    std::string cert, key;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            usage();
        }
        const char* v = argv[++i];
        if (a == "-p") opt.port = std::atoi(v);
        else if (a == "-c") opt.concurrency = std::atoi(v);
        else if (a == "-n") opt.total = std::atol(v);
        else if (a == "-s") opt.seconds = std::atof(v);
        else if (a == "-j") opt.threads = std::max(1, std::atoi(v));
        else if (a == "-H") opt.hold = std::atof(v);
        else if (a == "-u") opt.user = v;
        else if (a == "-w") opt.password = v;
        else if (a == "--timeout") opt.timeout = std::atof(v);
        else if (a == "--bytes") opt.messageBytes = std::atoi(v);
        else if (a == "--cert") cert = v;
        else if (a == "--key") key = v;
        else usage();
    }
    if (opt.port <= 0) {
        usage();
    }
    if (mode == "sink") {
        if (cert.empty() || key.empty()) {
            usage();
        }
        return bench::sinkMain(opt.port, opt.threads, cert, key);
    }
    if (mode == "sessions") opt.mode = bench::Mode::Sessions;
    else if (mode == "idle") opt.mode = bench::Mode::Idle;
    else if (mode == "burst") opt.mode = bench::Mode::Burst;
    else usage();
    if (opt.total <= 0 && !(opt.mode == bench::Mode::Sessions && opt.seconds > 0)) {
        usage();
    }
    bench::raiseFdLimit();

    double t0 = bench::nowSeconds(), cpu0 = cpuSeconds();
    bench::Stats st = bench::runClients(opt, onReady);
    double wall = bench::nowSeconds() - t0, cpu = cpuSeconds() - cpu0;
    long failed = 0;
    for (const auto& e : st.errors) {
        failed += e.second;
    }
    std::printf("{\"mode\": \"%s\", \"ok\": %ld, \"failed\": %ld, \"wall_s\": %.3f, \"cpu_s\": %.3f", mode.c_str(),
                st.ok, failed, wall, cpu);
    if (opt.mode == bench::Mode::Sessions) {
        std::printf(", \"rate\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f", static_cast<double>(st.ok) / wall,
                    1000 * percentile(st.latencies, 0.50), 1000 * percentile(st.latencies, 0.99));
    } else if (opt.mode == bench::Mode::Idle) {
        std::printf(", \"hold_failures\": %ld", st.holdFailures);
    } else {
        std::printf(", \"auth_235\": %ld, \"auth_454\": %ld, \"auth_other\": %ld, \"conn_errors\": %ld,"
                    " \"last_answer_s\": %.3f, \"last_start_s\": %.3f",
                    st.auth235, st.auth454, st.authOther, st.connErrors, st.lastAnswer, st.lastStart);
    }
    std::printf(", \"errors\": %s}\n", jsonErrors(st).c_str());
    return 0;
}
