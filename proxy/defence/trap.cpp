// The spambot trap's pure parts.  See trap.h.
#include "defence/trap.h"

#include <algorithm>
#include <functional>

#include "wire/text_util.h"

namespace subproxy {

namespace {

constexpr const char* kSignalNames[kTrapSignals] = {"pregreet", "no_auth", "fanout",
                                                    "non_smtp", "bare_newline", "dnsbl"};
constexpr const char* kActionNames[] = {"ignore", "log", "tarpit", "reject", "ban"};

bool isHeaderNameChar(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

const char* trapSignalName(TrapSignal s) { return kSignalNames[static_cast<int>(s)]; }
const char* trapActionName(TrapAction a) { return kActionNames[static_cast<int>(a)]; }

bool parseTrapAction(std::string_view text, TrapAction& out) {
    for (int i = 0; i < 5; ++i) {
        if (iequals(text, kActionNames[i])) {
            out = static_cast<TrapAction>(i);
            return true;
        }
    }
    return false;
}

TrapAction effectiveTrapAction(TrapAction configured, bool tarpitFree) {
    if (configured == TrapAction::Tarpit && !tarpitFree) {
        return TrapAction::Reject;
    }
    return configured;
}

FirstBytes classifyFirstBytes(std::string_view b) {
    if (b.empty() || b[0] != 0x16) {
        return FirstBytes::Other;
    }
    if (b.size() == 1) {
        return FirstBytes::Undecided;
    }
    return b[1] == 0x03 ? FirstBytes::TlsHandshake : FirstBytes::Other;
}

std::string detectBinaryHello(std::string_view b) {
    if (classifyFirstBytes(b) == FirstBytes::TlsHandshake) {
        return "TLS handshake on the plain port";
    }
    // SSLv2-compatible ClientHello: 2-byte length with the top bit set, then type 1.
    if (b.size() >= 3 && (static_cast<unsigned char>(b[0]) & 0x80) && b[2] == 0x01) {
        return "SSLv2 handshake on the plain port";
    }
    return {};
}

std::string detectHttpLine(std::string_view line) {
    // Postfix's postscreen_forbidden_commands is "CONNECT GET POST"; add the other methods
    // only when an HTTP version follows, so an odd SMTP verb is never mistaken for HTTP.
    static const char* const kAlways[] = {"GET ", "POST ", "CONNECT "};
    static const char* const kWithVersion[] = {"HEAD ", "PUT ", "OPTIONS ", "DELETE ", "PATCH ", "TRACE "};
    const auto starts = [&](const char* verb) {
        const std::string_view v(verb);
        return line.size() >= v.size() && iequals(line.substr(0, v.size()), v);
    };
    for (const char* verb : kAlways) {
        if (starts(verb)) {
            return "HTTP request";
        }
    }
    const bool version = line.find(" HTTP/") != std::string_view::npos;
    for (const char* verb : kWithVersion) {
        if (starts(verb) && version) {
            return "HTTP request";
        }
    }
    // A header line "Name: value".  SMTP verbs never end in ':' ("MAIL FROM:" has a space
    // before the colon's word), so the first word decides.
    std::size_t i = 0;
    while (i < line.size() && isHeaderNameChar(line[i])) {
        ++i;
    }
    if (i > 0 && i < line.size() && line[i] == ':' && (i + 1 == line.size() || line[i + 1] == ' ')) {
        const std::string_view name = line.substr(0, i);
        for (const char* known : {"Host", "User-Agent", "Accept", "Content-Type", "Content-Length", "Connection",
                                  "Cookie", "Referer", "Accept-Encoding", "Accept-Language"}) {
            if (iequals(name, known)) {
                return "HTTP header";
            }
        }
    }
    return {};
}

std::string formatTrapLine(TrapSignal s, TrapAction a, const std::string& dialledAddress, int dialledPort,
                           std::string_view helo, std::string_view detail) {
    return std::string("trap: signal=") + trapSignalName(s) + " action=" + trapActionName(a) + " dialled=[" +
           dialledAddress + "]:" + std::to_string(dialledPort) + " helo=<" + printable(helo) + "> detail=<" +
           printable(detail, 120) + ">";
}

// ---------------------------------------------------------------------------------------------

FanOutTracker::FanOutTracker(int limit, int windowSeconds, int maxClients) {
    configure(limit, windowSeconds, maxClients);
}

void FanOutTracker::configure(int limit, int windowSeconds, int maxClients) {
    limit_ = static_cast<std::size_t>(std::max(limit, 1));
    window_ = std::max(windowSeconds, 1);
    maxClients_ = static_cast<std::size_t>(std::max(maxClients, 1));
    trim();
}

void FanOutTracker::trim() {
    while (map_.size() > maxClients_) {
        map_.erase(lru_.back().client);
        lru_.pop_back();
    }
}

int FanOutTracker::record(const std::string& client, const std::string& dialled, std::int64_t now) {
    auto it = map_.find(client);
    if (it == map_.end()) {
        lru_.push_front(Entry{client, {}});
        it = map_.emplace(client, lru_.begin()).first;
        trim();
    } else {
        lru_.splice(lru_.begin(), lru_, it->second);  // most recently seen first
    }
    auto& dests = it->second->dests;
    dests.erase(std::remove_if(dests.begin(), dests.end(), [&](const Dest& d) { return now - d.seen >= window_; }),
                dests.end());
    const std::uint64_t h = std::hash<std::string>{}(dialled);
    auto known = std::find_if(dests.begin(), dests.end(), [&](const Dest& d) { return d.hash == h; });
    if (known != dests.end()) {
        known->seen = now;
    } else if (dests.size() <= limit_) {
        dests.push_back(Dest{h, now});
    } else {
        // Full: already over the limit.  The new destination replaces the oldest, so the
        // client stays flagged while it keeps fanning out and memory stays bounded.
        *std::min_element(dests.begin(), dests.end(), [](const Dest& x, const Dest& y) {
            return x.seen < y.seen;
        }) = Dest{h, now};
    }
    return static_cast<int>(dests.size());
}

}  // namespace subproxy
