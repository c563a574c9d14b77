// addMetrics (metrics.h): every event loop's counters into one, for a scrape.
#include "ops/metrics.h"

namespace subproxy {

namespace {

template <class Map>
void addCounts(Map& into, const Map& from) {
    for (const auto& [key, value] : from) {
        into[key] += value;
    }
}

}  // namespace

void addMetrics(Metrics& into, const Metrics& from) {
    into.sessionsOpen += from.sessionsOpen;
    into.sessionsTotal += from.sessionsTotal;
    into.connectionsRefused += from.connectionsRefused;
    into.sessionsShed += from.sessionsShed;
    into.tlsHandshakes += from.tlsHandshakes;
    into.tlsFailures += from.tlsFailures;
    into.implicitTlsDetections += from.implicitTlsDetections;
    addCounts(into.authSuccesses, from.authSuccesses);
    addCounts(into.authFailures, from.authFailures);
    into.authTemporaryFailures += from.authTemporaryFailures;
    addCounts(into.authBackendErrors, from.authBackendErrors);
    into.authDelayedReplies += from.authDelayedReplies;
    into.authCacheHits += from.authCacheHits;
    for (const auto& [outcome, histogram] : from.authDuration) {
        into.authDuration[outcome].add(histogram);
    }
    into.messagesRelayed += from.messagesRelayed;
    into.messagesRejected += from.messagesRejected;
    into.bytesRelayed += from.bytesRelayed;
    addCounts(into.upstreamErrors, from.upstreamErrors);
    into.upstreamFailovers += from.upstreamFailovers;
    for (const auto& [command, histogram] : from.upstreamReplyDuration) {
        into.upstreamReplyDuration[command].add(histogram);
    }
    for (int i = 0; i < 6; ++i) {
        into.repliesByClass[i] += from.repliesByClass[i];
    }
    into.bans += from.bans;
    into.banRefusals += from.banRefusals;
    for (int i = 0; i < kTrapSignals; ++i) {
        into.trapDetections[i] += from.trapDetections[i];
    }
    for (const auto& [zone, counts] : from.dnsbl) {
        auto& sum = into.dnsbl[zone];
        sum.queries += counts.queries;
        sum.hits += counts.hits;
        sum.errors += counts.errors;
    }
    into.reloads += from.reloads;
    into.reloadFailures += from.reloadFailures;
    for (int i = 0; i < kFlagReasons; ++i) {
        into.accounts.flags[i] += from.accounts.flags[i];
    }
    for (int i = 0; i < 2; ++i) {
        into.accounts.limitRefusals[i] += from.accounts.limitRefusals[i];
    }
    into.accounts.loginRefusals += from.accounts.loginRefusals;
    for (int i = 0; i < 3; ++i) {
        into.accounts.passwordChecks[i] += from.accounts.passwordChecks[i];
    }
}

}  // namespace subproxy
