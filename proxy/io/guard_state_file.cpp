#include <fcntl.h>
#include <unistd.h>

#include "io/guard_state_file.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include "wire/text_util.h"

namespace subproxy {

namespace {

std::string utc(std::int64_t t) { return formatUtc(t, "%Y-%m-%dT%H:%M:%SZ"); }

}  // namespace

bool loadGuardStateFile(const std::string& path, BanList& bans, std::int64_t now, BanList::LoadResult& result,
                   std::string& error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return true;  // nothing saved yet
        }
        error = std::strerror(errno);
        return false;
    }
    constexpr std::size_t kChunk = 1 << 20;
    std::string pending;  // a chunk plus the line cut at its end
    std::vector<char> buf(kChunk);
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = std::strerror(errno);
            ::close(fd);
            return false;
        }
        if (n == 0) {
            break;
        }
        pending.append(buf.data(), static_cast<std::size_t>(n));
        const std::size_t lastNewline = pending.rfind('\n');
        if (lastNewline != std::string::npos) {
            result += bans.load(std::string_view(pending).substr(0, lastNewline + 1), now);
            pending.erase(0, lastNewline + 1);
        }
    }
    ::close(fd);
    result += bans.load(pending, now);  // a last line without a newline
    return true;
}

std::string listBans(const BanList& bans, std::int64_t now) {
    std::string out;
    for (const auto& b : bans.bans(now)) {
        out += b.key + " until=" + utc(b.until) + " left=" + std::to_string(b.until - now) +
               "s failures=" + std::to_string(b.failures) + "\n";
    }
    return out;
}

std::string listSharedBans(const std::vector<SharedBan>& bans, std::int64_t now) {
    GuardPolicy unbounded;
    unbounded.maxTracked = 0;  // the list as Redis holds it, all of it
    BanList list(unbounded);
    for (const auto& b : bans) {
        list.adoptBan(b.key, b.until, b.failures, now);
    }
    return listBans(list, now);
}

}  // namespace subproxy
