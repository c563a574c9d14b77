#include "log.h"

#include <syslog.h>

#include <cstdio>

namespace subproxy {

namespace {

bool toStderr = true;  // until logOpen: start-up errors must be seen

void emit(int priority, const char* tag, const std::string& line) {
    syslog(priority, "%s%s", tag, line.c_str());
    if (toStderr) {
        std::fprintf(stderr, "subproxy: %s%s\n", tag, line.c_str());
    }
}

}  // namespace

void logOpen(int facility, bool alsoStderr) {
    openlog("subproxy", LOG_PID | LOG_NDELAY, facility);
    toStderr = alsoStderr;
}

void logToStderr(bool on) { toStderr = on; }

void logInfo(const std::string& line) { emit(LOG_INFO, "", line); }
void logWarning(const std::string& line) { emit(LOG_WARNING, "warning: ", line); }
void logError(const std::string& line) { emit(LOG_ERR, "error: ", line); }

}  // namespace subproxy
