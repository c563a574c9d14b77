#include "os/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>

namespace subproxy {

namespace {

std::optional<std::string> readFile(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct DirClose {
    void operator()(DIR* d) const { closedir(d); }
};

// Entries of /proc/self/fd, without "." and "..", and without the descriptor this listing
// holds itself.
std::optional<std::uint64_t> openDescriptors() {
    std::unique_ptr<DIR, DirClose> dir(opendir("/proc/self/fd"));
    if (!dir) {
        return std::nullopt;
    }
    std::uint64_t n = 0;
    while (const dirent* e = readdir(dir.get())) {
        if (e->d_name[0] != '.') {
            ++n;
        }
    }
    return n > 0 ? n - 1 : 0;
}

// The unix time of the boot: the clock the stat line's starttime counts from (CLOCK_BOOTTIME,
// suspend included).  Not /proc/stat's btime as the client libraries read it: the shipped
// unit's ProcSubset=pid hides /proc/stat.
double bootTime() {
    timespec real{}, boot{};
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    return static_cast<double>(real.tv_sec - boot.tv_sec) + static_cast<double>(real.tv_nsec - boot.tv_nsec) / 1e9;
}

}  // namespace

std::optional<ProcessFigures> readProcessFigures() {
    const auto stat = readFile("/proc/self/stat");
    if (!stat) {
        return std::nullopt;
    }
    const long ticks = sysconf(_SC_CLK_TCK);
    const long page = sysconf(_SC_PAGESIZE);
    ProcessFigures p;
    if (ticks <= 0 || page <= 0 ||
        !parseProcStat(*stat, static_cast<double>(ticks), static_cast<double>(page), bootTime(), p)) {
        return std::nullopt;
    }
    const auto fds = openDescriptors();
    if (!fds) {
        return std::nullopt;
    }
    p.openFds = *fds;
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        p.maxFds = static_cast<std::uint64_t>(limit.rlim_cur);
    }
    return p;
}

}  // namespace subproxy
