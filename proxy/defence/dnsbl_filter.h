// DNSBL/DNSWL scoring (issue 3, item 3), pure: query names, per-zone answer filters
// (postscreen's "127.0.0.[2..11]", lists of codes, Exchange-style bitmasks), weights, the
// threshold, reply templates and the TTL cache.  dnsbl.cpp does the asynchronous lookups.
#pragma once
#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wire/cidr.h"

namespace subproxy {

// One octet of a filter: the set of values it accepts, as [lo, hi] ranges.
struct OctetSet {
    std::vector<std::pair<int, int>> ranges;
    bool contains(int v) const;
};

// "127.0.0.2", "127.0.0.[2..11]", "127.0.[0..255].[1;3;5..7]" (postscreen_dnsbl_sites).
struct AnswerPattern {
    std::array<OctetSet, 4> octets;
    bool matches(std::uint32_t address) const;  // host byte order
};
// nullopt with `error` set on bad syntax.
std::optional<AnswerPattern> parseAnswerPattern(std::string_view text, std::string* error);

struct DnsblZone {
    std::string name;                     // rule name for logs and %1 (default: the zone)
    std::string zone;                     // "zen.spamhaus.org"
    std::vector<AnswerPattern> filters;   // any matches; empty and no bitmask: any valid answer
    std::vector<std::string> filterText;  // as written, for logs
    std::uint32_t bitmask = 0;            // Exchange: last octet & mask != 0
    int weight = 1;                       // negative: an allowlist (DNSWL)
    std::string reply;                    // template; empty: DnsblConfig::reply
};

enum class DnsblDecision { Connect, Mail };

struct DnsblConfig {
    std::vector<DnsblZone> zones;         // empty: no lookups
    int threshold = 1;                    // listed when the score is >= threshold
    bool allowlistEnabled = false;
    int allowlistThreshold = -1;          // score <= this: allowlisted (trap actions skipped)
    DnsblDecision decision = DnsblDecision::Mail;
    bool blockAuthenticated = false;      // listed customers who authenticate still relay
    std::vector<std::string> nameservers; // "127.0.0.1:5353"; empty: /etc/resolv.conf
    int timeout = 5;                      // seconds to wait for all zones before greeting
    int negativeTtl = 60;                 // seconds to cache "not listed" (NXDOMAIN has no TTL here)
    int maxTtl = 3600;                    // cap on cached answers' TTL
    int cacheSize = 10000;                // cached query names (LRU)
    std::string reply = "Service unavailable; client [%0] blocked using %2";
};

// "2.0.0.127.zen.spamhaus.org" for 127.0.0.2; IPv6: 32 reversed nibbles (RFC 5782 §2.4).
std::string dnsblQueryName(const IpAddress& client, const std::string& zone);

enum class ZoneStatus { NotListed, Listed, Error };

struct ZoneResult {
    ZoneStatus status = ZoneStatus::NotListed;
    std::uint32_t code = 0;   // the answer that matched (Listed) or was refused (Error)
    std::string detail;       // why Error, for the log
};

// Judges one zone's A answers (host byte order; empty: NXDOMAIN).  Answers outside 127/8 or
// in 127.255.255.0/24 (Spamhaus: query refused, open resolver…) make the zone's result an
// error, never a listing.
ZoneResult evaluateZone(const DnsblZone& zone, const std::vector<std::uint32_t>& answers);

struct DnsblVerdict {
    int score = 0;
    bool listed = false;          // score >= threshold
    bool allowlisted = false;     // score <= allowlist threshold (when enabled)
    std::string ruleName;         // the heaviest listing zone (for the reply and log)
    std::string zone;
    std::string reply;            // expanded template (empty when not listed)
    std::string summary;          // "zen=127.0.0.2*3 dnswl=error" for the log
};

// Sum of the weights of listing zones (each at most once), and the reply of the heaviest.
DnsblVerdict scoreDnsbl(const DnsblConfig& config, const std::vector<ZoneResult>& results,
                        const std::string& clientAddress);

// Exchange-style placeholders: %0 client address, %1 rule name, %2 zone, %% a percent sign.
std::string expandDnsblTemplate(std::string_view text, const std::string& client, const std::string& rule,
                                const std::string& zone);
// Checks a template (unknown %x is an error, so an operator typo cannot reach customers).
bool validDnsblTemplate(std::string_view text, std::string* error);

std::string formatIpv4(std::uint32_t address);

// Answers cached by query name until their TTL ends.  Bounded: least recently used dropped.
class DnsblCache {
public:
    struct Entry {
        std::vector<std::uint32_t> answers;  // empty: not listed
        std::int64_t expires = 0;
    };
    explicit DnsblCache(std::size_t maxEntries) : max_(maxEntries) {}
    void setMax(std::size_t maxEntries);
    const Entry* find(const std::string& name, std::int64_t now);
    void put(const std::string& name, std::vector<std::uint32_t> answers, std::int64_t expires);
    std::size_t size() const { return map_.size(); }

private:
    using Item = std::pair<std::string, Entry>;
    std::size_t max_;
    std::list<Item> lru_;
    std::unordered_map<std::string, std::list<Item>::iterator> map_;
};

}  // namespace subproxy
