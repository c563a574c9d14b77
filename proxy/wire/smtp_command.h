// SMTP command lines and the command table (Postfix smtpd_cmd_table): which verbs exist, which
// are allowed before TLS and before AUTH, which end a pipelining group (RFC 2920 §3.1), which
// are never relayed.  The rules live here, in one table, not in each handler.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subproxy {

enum class Verb {
    Helo, Ehlo, StartTls, Auth, Mail, Rcpt, Data, Rset, Noop, Quit, Help,
    Vrfy, Expn, Etrn, Turn, Bdat, Xclient, Xforward, Unknown,
};

enum CommandFlag : unsigned {
    kPreTls = 1u << 0,      // allowed before STARTTLS completed
    kPreAuth = 1u << 1,     // allowed (after TLS) before AUTH succeeded
    kEndsGroup = 1u << 2,   // ends a pipelining group: EHLO, DATA, QUIT, NOOP, …
    kRelayed = 1u << 3,     // forwarded to the MSA once authenticated
    kRefused = 1u << 4,     // never served, never forwarded: 502
};

struct CommandSpec {
    std::string_view name;
    Verb verb;
    unsigned flags;
};

const CommandSpec& commandSpec(Verb verb);

struct Command {
    Verb verb = Verb::Unknown;
    std::string verbText;  // as sent (for logs), upper-cased
    std::string arg;       // everything after the verb and one or more spaces, trailing spaces cut
    const CommandSpec& spec() const { return commandSpec(verb); }
};

// Splits a command line (without CRLF).  Verbs are case-insensitive; "MAIL FROM:" and
// "RCPT TO:" are recognised by their verb, the rest of the line is `arg`.
Command parseCommand(std::string_view line);

// MAIL FROM:<path> [params] / RCPT TO:<path> [params] (RFC 5321 §4.1.2).
struct PathCommand {
    std::string path;                   // without the angle brackets
    std::vector<std::string> params;    // "KEY=VALUE" or "KEY", as sent
};
// `arg` is what follows the verb ("FROM:<a@b> SIZE=10").  `keyword` is "FROM" or "TO".
// nullopt on a syntax error.  Tolerated as Postfix does (strict_rfc821_envelopes = no), because
// old mail programs send them: spaces after the colon, and a path without angle brackets
// ("FROM:alice@example.org SIZE=10").  The caller relays the canonical "<path>".
std::optional<PathCommand> parsePathCommand(std::string_view arg, std::string_view keyword);

}  // namespace subproxy
