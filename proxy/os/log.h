// Logging to syslog (facility from the config), with -f to standard error as well, and with
// log_file to a file of subproxy's own, one line per write(2):
//   2024-05-01T12:34:56.123456+02:00 subproxy[1234]: warning: [192.0.2.7]:50123: ...
// Callers pass finished lines; peer text must already be cleaned with printable().  Safe to
// call from any thread (the SASL workers log too).
#pragma once
#include <optional>
#include <string>

#include "os/atomic_file.h"  // FileOwner

namespace subproxy {

void logOpen(int facility, bool alsoStderr);
// systemd sets JOURNAL_STREAM=DEVICE:INODE when it connects standard error to the journal.
// The syslog lines reach the journal already: a copy on standard error would show (and store)
// every line twice, so -f under systemd logs through syslog alone.
bool stderrIsTheJournal();
void logToStderr(bool on);
// Opens log_file for appending (made 0640 when missing, and then given to `owner`, the account
// the daemon will drop to, so that it can reopen the file later).  A symlink or anything but a
// regular file at `path` is refused.  Throws std::runtime_error ("log_file PATH: ...").
void logOpenFile(const std::string& path, const std::optional<FileOwner>& owner);
// SIGUSR1 and SIGHUP (logrotate renamed the file): opens log_file's path again, by now as the
// unprivileged account.  On failure the old file stays in use and the reason is returned;
// "" when reopened, or when there is no log_file.
std::string logReopenFile();
// The log_file path in use ("" without one).
const std::string& logFilePath();
void logInfo(const std::string& line);
void logWarning(const std::string& line);
void logError(const std::string& line);

}  // namespace subproxy
