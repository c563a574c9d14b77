// DNSBL scoring, pure.  See dnsbl_filter.h.
#include "defence/dnsbl_filter.h"

#include <algorithm>
#include <cstdlib>

namespace subproxy {

bool OctetSet::contains(int v) const {
    for (const auto& [lo, hi] : ranges) {
        if (v >= lo && v <= hi) {
            return true;
        }
    }
    return false;
}

bool AnswerPattern::matches(std::uint32_t address) const {
    for (int i = 0; i < 4; ++i) {
        if (!octets[i].contains(static_cast<int>((address >> (24 - 8 * i)) & 0xff))) {
            return false;
        }
    }
    return true;
}

namespace {

bool parseNumber(std::string_view s, int& out) {
    if (s.empty() || s.size() > 3) {
        return false;
    }
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    if (v > 255) {
        return false;
    }
    out = v;
    return true;
}

// "7", "2..11" (one element of a [...] list)
bool parseElement(std::string_view s, std::pair<int, int>& out) {
    const auto dots = s.find("..");
    if (dots == std::string_view::npos) {
        int v = 0;
        if (!parseNumber(s, v)) {
            return false;
        }
        out = {v, v};
        return true;
    }
    int lo = 0;
    int hi = 0;
    if (!parseNumber(s.substr(0, dots), lo) || !parseNumber(s.substr(dots + 2), hi) || lo > hi) {
        return false;
    }
    out = {lo, hi};
    return true;
}

bool parseOctet(std::string_view s, OctetSet& out) {
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
        s = s.substr(1, s.size() - 2);
        while (true) {
            const auto semi = s.find(';');
            std::pair<int, int> range;
            if (!parseElement(s.substr(0, semi), range)) {
                return false;
            }
            out.ranges.push_back(range);
            if (semi == std::string_view::npos) {
                return true;
            }
            s = s.substr(semi + 1);
        }
    }
    std::pair<int, int> range;
    if (s.find("..") != std::string_view::npos || !parseElement(s, range)) {
        return false;  // a bare range must be bracketed, as in postscreen
    }
    out.ranges.push_back(range);
    return true;
}

}  // namespace

std::optional<AnswerPattern> parseAnswerPattern(std::string_view text, std::string* error) {
    AnswerPattern p;
    // Split on the dots between octets; ".." inside brackets belongs to a range.
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '[') {
            ++depth;
        } else if (text[i] == ']') {
            --depth;
        } else if (text[i] == '.' && depth == 0) {
            parts.push_back(text.substr(start, i - start));
            start = i + 1;
        }
    }
    parts.push_back(text.substr(start));
    if (parts.size() != 4 || depth != 0) {
        if (error) {
            *error = "expected four octets like 127.0.0.2 or 127.0.0.[2..11]";
        }
        return std::nullopt;
    }
    for (int i = 0; i < 4; ++i) {
        if (!parseOctet(parts[i], p.octets[i])) {
            if (error) {
                *error = "bad octet \"" + std::string(parts[i]) + "\" (a number 0..255 or [a;b;c..d])";
            }
            return std::nullopt;
        }
    }
    return p;
}

std::string dnsblQueryName(const IpAddress& client, const std::string& zone) {
    std::string name;
    if (!client.v6) {
        for (int i = 3; i >= 0; --i) {
            name += std::to_string(client.bytes[i]) + ".";
        }
    } else {
        static const char kHex[] = "0123456789abcdef";
        for (int i = 15; i >= 0; --i) {
            name += kHex[client.bytes[i] & 0x0f];
            name += '.';
            name += kHex[client.bytes[i] >> 4];
            name += '.';
        }
    }
    return name + zone;
}

std::string formatIpv4(std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." + std::to_string((a >> 8) & 0xff) +
           "." + std::to_string(a & 0xff);
}

ZoneResult evaluateZone(const DnsblZone& zone, const std::vector<std::uint32_t>& answers) {
    ZoneResult r;
    for (std::uint32_t a : answers) {
        if ((a >> 24) != 127) {
            return ZoneResult{ZoneStatus::Error, a, "answer " + formatIpv4(a) + " is outside 127.0.0.0/8"};
        }
        if ((a & 0xffffff00u) == 0x7fffff00u) {
            return ZoneResult{ZoneStatus::Error, a,
                              "answer " + formatIpv4(a) + " is an error code (127.255.255.x), not a listing"};
        }
    }
    for (std::uint32_t a : answers) {
        bool hit = zone.filters.empty() && zone.bitmask == 0;
        for (const auto& f : zone.filters) {
            hit = hit || f.matches(a);
        }
        if (zone.bitmask != 0 && (a & 0xff & zone.bitmask) != 0) {
            hit = true;
        }
        if (hit) {
            return ZoneResult{ZoneStatus::Listed, a, {}};
        }
    }
    return r;
}

DnsblVerdict scoreDnsbl(const DnsblConfig& config, const std::vector<ZoneResult>& results,
                        const std::string& clientAddress) {
    DnsblVerdict v;
    const DnsblZone* heaviest = nullptr;
    for (std::size_t i = 0; i < results.size() && i < config.zones.size(); ++i) {
        const DnsblZone& z = config.zones[i];
        const ZoneResult& r = results[i];
        if (!v.summary.empty()) {
            v.summary += " ";
        }
        v.summary += z.name + "=";
        switch (r.status) {
        case ZoneStatus::NotListed:
            v.summary += "-";
            break;
        case ZoneStatus::Error:
            v.summary += "error";
            break;
        case ZoneStatus::Listed:
            v.summary += formatIpv4(r.code) + "*" + std::to_string(z.weight);
            v.score += z.weight;
            if (z.weight > 0 && (!heaviest || z.weight > heaviest->weight)) {
                heaviest = &z;
            }
            break;
        }
    }
    v.listed = !config.zones.empty() && v.score >= config.threshold;
    v.allowlisted = config.allowlistEnabled && v.score <= config.allowlistThreshold;
    if (v.listed && heaviest) {
        v.ruleName = heaviest->name;
        v.zone = heaviest->zone;
        v.reply = expandDnsblTemplate(heaviest->reply.empty() ? config.reply : heaviest->reply, clientAddress,
                                      v.ruleName, v.zone);
    }
    return v;
}

std::string expandDnsblTemplate(std::string_view text, const std::string& client, const std::string& rule,
                                const std::string& zone) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 1 < text.size()) {
            const char c = text[++i];
            out += c == '0' ? client : c == '1' ? rule : c == '2' ? zone : std::string(1, c);
        } else {
            out += text[i];
        }
    }
    return out;
}

bool validDnsblTemplate(std::string_view text, std::string* error) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            continue;
        }
        if (i + 1 >= text.size() || std::string_view("012%").find(text[i + 1]) == std::string_view::npos) {
            if (error) {
                *error = "unknown placeholder at \"" + std::string(text.substr(i, 2)) +
                         "\" (use %0 client address, %1 rule name, %2 zone, %% percent sign)";
            }
            return false;
        }
        ++i;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------

void DnsblCache::setMax(std::size_t maxEntries) {
    max_ = std::max<std::size_t>(maxEntries, 1);
    while (map_.size() > max_) {
        map_.erase(lru_.back().first);
        lru_.pop_back();
    }
}

const DnsblCache::Entry* DnsblCache::find(const std::string& name, std::int64_t now) {
    auto it = map_.find(name);
    if (it == map_.end()) {
        return nullptr;
    }
    if (it->second->second.expires <= now) {
        lru_.erase(it->second);
        map_.erase(it);
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->second;
}

void DnsblCache::put(const std::string& name, std::vector<std::uint32_t> answers, std::int64_t expires) {
    auto it = map_.find(name);
    if (it != map_.end()) {
        lru_.erase(it->second);
        map_.erase(it);
    }
    lru_.push_front(Item{name, Entry{std::move(answers), expires}});
    map_.emplace(name, lru_.begin());
    setMax(max_);
}

}  // namespace subproxy
