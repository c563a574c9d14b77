// Logging to syslog (facility from the config) and, with -f, to stderr as well.
// Callers pass finished lines; peer text must already be cleaned with printable().
#pragma once
#include <string>

namespace subproxy {

void logOpen(int facility, bool alsoStderr);
void logToStderr(bool on);
void logInfo(const std::string& line);
void logWarning(const std::string& line);
void logError(const std::string& line);

}  // namespace subproxy
