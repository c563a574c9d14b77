// client.h — the customer side of the load generator (client.cpp): many SMTP submission
// sessions at once over STARTTLS, spread over a few threads with an event loop each.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace bench {

enum class Mode { Sessions, Idle, Burst };

struct Options {
    Mode mode = Mode::Sessions;
    int port = 0;                  // on 127.0.0.1
    int concurrency = 50;          // sessions: at once; idle: logins under way at once
    long total = 0;                // sessions / idle / burst: how many (0 with seconds: no limit)
    double seconds = 0;            // sessions: start new ones for this long
    int threads = 1;
    double hold = 10;              // idle: seconds the authenticated sessions stay open
    double timeout = 60;           // per session, idle time not counted
    int messageBytes = 2048;
    std::string user = "alice";
    std::string password = "alice-secret";
};

// What one thread saw; merged at the end.
struct Stats {
    long ok = 0;                                // sessions: 221 after the message; idle: held
    std::vector<double> latencies;              // sessions: connect to 221, seconds
    std::map<std::string, long> errors;         // "<step> <code>" or "<step>: <socket event>"
    long auth235 = 0, auth454 = 0, authOther = 0, connErrors = 0;  // burst
    double lastAnswer = 0;                      // burst: seconds from the start to the last answer
    double lastStart = 0;                       // burst: when the last connection was opened
    long holdFailures = 0;                      // idle: lost while held

    void merge(const Stats& o);
};

// Runs OPT to the end.  Idle mode calls READY once every login is settled (HELD authenticated,
// FAILED not), holds the sessions opt.hold seconds, then sends QUIT on each.
Stats runClients(const Options& opt, void (*ready)(long held, long failed, double seconds));

}  // namespace bench
