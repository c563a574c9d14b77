// The latency histograms' clock (metrics.h): the engine says when an AUTH line was read, when
// the AUTH exchange ended and when a relayed command went to the MSA; the session times them
// with the monotonic clock and hands seconds to the pure Metrics.
#include "io/server.h"
#include "io/session.h"

namespace subproxy {

namespace {

double secondsSince(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

}  // namespace

void Session::authLineRead() { authLineAt_ = std::chrono::steady_clock::now(); }

void Session::authAnswered(AuthOutcome outcome) {
    // The guard's penalty is policy, not latency: a held 535 counts until it was held, so the
    // histogram shows the backend's time whatever guard.auth_delay says.
    const auto end = penaltyFrom_.value_or(std::chrono::steady_clock::now());
    penaltyFrom_.reset();
    server_.metrics().authAnswered(outcome, secondsSince(authLineAt_, end));
}

void Session::upstreamCommandSent(const char* command) {
    awaitedReplies_.emplace_back(std::chrono::steady_clock::now(), command);
}

void Session::timeUpstreamReply() {
    if (awaitedReplies_.empty()) {
        return;  // a reply nobody asked for: the engine closes the session over it
    }
    const auto [sent, command] = awaitedReplies_.front();
    awaitedReplies_.pop_front();
    server_.metrics().upstreamReplied(command, secondsSince(sent, std::chrono::steady_clock::now()));
}

}  // namespace subproxy
