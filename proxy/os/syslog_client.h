// subproxy's own syslog(3): one send(2) per line on a datagram socket connected to /dev/log,
// in the format glibc writes ("<PRI>Mmm dd hh:mm:ss subproxy[PID]: text", RFC 3164), so that
// journald and rsyslog file it exactly as before (SYSLOG_IDENTIFIER=subproxy).  Why not
// glibc's: it asks getpid(2) for every line (LOG_PID), and while /dev/log is missing (a
// container, a host between syslog daemons) it opens, connects and closes a socket for every
// line; a session logs four or five lines.  Here the pid is cached (and refreshed after a
// fork) and a missing /dev/log is tried again at most once a second.  Thread-safe: datagrams
// go out whole; only reconnecting takes a lock.
#pragma once
#include <string>

namespace subproxy {

// `facility` as syslog.h's LOG_MAIL etc.; connects at once (LOG_NDELAY's behaviour: the
// socket is opened before privileges are dropped or a chroot).
void syslogOpen(int facility);
// `priority` as syslog.h's LOG_INFO etc.
void syslogLine(int priority, const std::string& text);
// This process's pid, asked of the kernel once per process (a fork makes it ask again).
int cachedPid();

}  // namespace subproxy
