// What `subproxy` does when it neither reports nor talks to a running daemon: `-t` (check the
// configuration as the daemon would use it) and the daemon's start-up, in the order that
// matters (log file as root, SASL, fork, pid file, bind, drop privileges, serve).
#pragma once
#include <string>

namespace subproxy {

int runConfigurationCheck(const std::string& configFile);  // -t: the exit code
int runDaemon(const std::string& configFile, bool foreground);  // until SIGTERM and the drain

}  // namespace subproxy
