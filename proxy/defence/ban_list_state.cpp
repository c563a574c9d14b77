// The guard's state file: the text form of the bans and failure counters (BanList::serialise)
// and reading it back, chunk by chunk (BanList::load).  The daemon writes and reads the file.
#include "defence/ban_list.h"

#include <algorithm>
#include <charconv>

namespace subproxy {

std::string BanList::serialise(std::int64_t now) const {
    // Written straight into one string (no per-ban copies): with a full table this runs once a
    // second during a flood of bans, on the event loop.
    std::string out = "# subproxy guard state v1: written by the daemon; see subproxy(8)\n";
    out.reserve(out.size() + 48 * (bans_.size() + addresses_.size() + users_.size()));
    auto line = [&out](const char* kind, std::string_view key, std::uint64_t a, std::int64_t b) {
        char first[24], second[24];  // 20 digits at most each
        const char* firstEnd = std::to_chars(first, first + sizeof first, a).ptr;
        const char* secondEnd = std::to_chars(second, second + sizeof second, b).ptr;
        out += kind;
        out += key;
        out += ' ';
        out.append(first, static_cast<std::size_t>(firstEnd - first));
        out += ' ';
        out.append(second, static_cast<std::size_t>(secondEnd - second));
        out += '\n';
    };
    for (const auto& [until, ban] : byEnd_) {
        if (until > now) {
            line("ban ", ban->first, static_cast<std::uint64_t>(until), ban->second.failures);
        }
    }
    for (const auto& e : addresses_.entries(now, policy_.window)) {
        line("addr ", e.key, e.count, e.start);
    }
    for (const auto& e : users_.entries(now, policy_.window)) {
        line("user ", percentEncode(e.key), e.count, e.start);
    }
    return out;
}

namespace {

// The next field of a state file line (space or tab separated; a CR of CRLF files is space).
std::string_view nextField(std::string_view& line) {
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    std::size_t i = 0;
    while (i < line.size() && isSpace(line[i])) {
        ++i;
    }
    std::size_t j = i;
    while (j < line.size() && !isSpace(line[j])) {
        ++j;
    }
    const std::string_view field = line.substr(i, j - i);
    line.remove_prefix(j);
    return field;
}

// A non-negative decimal that fits int64; nothing else in the field.
bool parseCount(std::string_view field, std::int64_t& out) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    if (ec != std::errc() || end != field.data() + field.size() || field.empty() || v > INT64_MAX) {
        return false;
    }
    out = static_cast<std::int64_t>(v);
    return true;
}

unsigned clampCount(std::int64_t n) { return static_cast<unsigned>(std::min<std::int64_t>(n, UINT32_MAX)); }

}  // namespace

void BanList::parseLine(std::string_view line, std::int64_t now, LoadResult& result) {
    const std::string_view kind = nextField(line);
    if (kind.empty() || kind[0] == '#') {
        return;  // blank or comment
    }
    const std::string_view key = nextField(line);
    std::int64_t a = 0, b = 0;
    if (!parseCount(nextField(line), a) || !parseCount(nextField(line), b) || !nextField(line).empty()) {
        ++result.unreadable;
        return;
    }
    if (kind == "ban" || kind == "addr") {
        // Keys are re-derived: a changed ipv6_prefix must not leave unliftable entries.
        const auto cidr = parseCidr(key);
        if (!cidr) {
            ++result.unreadable;
            return;
        }
        if (kind == "ban") {
            if (a <= now) {
                return;  // expired
            }
            // Full and this one would end first: it is the one eviction would pick, so skip it
            // before building its key (most lines of an oversized file end here; a shorter
            // duplicate of a kept ban is counted as dropped too).
            if (policy_.maxTracked > 0 && bans_.size() >= policy_.maxTracked && a <= byEnd_.begin()->first) {
                ++result.dropped;
                return;
            }
            const std::string k = addressKey(cidr->network);
            auto it = bans_.find(k);
            if (it != bans_.end() && it->second.until >= a) {
                return;  // listed twice (or merged into a live table): the longer ban stands
            }
            const std::size_t evicted = banEvictions_;
            insertBan(k, a, clampCount(b));
            result.dropped += banEvictions_ - evicted;
        } else if (now - b < policy_.window && b <= now) {
            const std::size_t evicted = addresses_.evictions();
            addresses_.restore(addressKey(cidr->network), clampCount(a), b);
            result.dropped += addresses_.evictions() - evicted;
        }
    } else if (kind == "user") {
        if (!percentDecode(key, scratch_)) {
            ++result.unreadable;
        } else if (now - b < policy_.window && b <= now) {
            const std::size_t evicted = users_.evictions();
            users_.restore(scratch_, clampCount(a), b);
            result.dropped += users_.evictions() - evicted;
        }
    } else {
        ++result.unreadable;
    }
}

BanList::LoadResult BanList::load(std::string_view text, std::int64_t now) {
    const bool wasDirty = dirty_;
    LoadResult result;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        parseLine(text.substr(0, nl), now, result);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    }
    // What was read is on disk already, unless some of it did not fit: then the next flush
    // rewrites the file at its bounded size (and the next start reads only that).
    dirty_ = wasDirty || result.dropped > 0;
    return result;
}

}  // namespace subproxy
