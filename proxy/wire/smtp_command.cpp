// The command table and the command-line parsers.
#include "wire/smtp_command.h"

#include <array>

#include "wire/text_util.h"

namespace subproxy {

namespace {

constexpr std::size_t kMaxVerbText = 16;  // enough for any real verb; junk is cut for logs
constexpr std::size_t kMaxPath = 256;     // RFC 5321 §4.5.3.1.3

// One row per Verb, in enum order (commandSpec indexes it).  RFC 2920 §3.1 lists the verbs
// that end a pipelining group; RFC 3207 §4 the ones allowed before STARTTLS.
constexpr std::array<CommandSpec, 19> kCommands{{
    {"HELO", Verb::Helo, kPreTls | kPreAuth | kEndsGroup},
    {"EHLO", Verb::Ehlo, kPreTls | kPreAuth | kEndsGroup},
    {"STARTTLS", Verb::StartTls, kPreTls | kPreAuth | kEndsGroup},
    {"AUTH", Verb::Auth, kPreAuth},
    {"MAIL", Verb::Mail, kRelayed},
    {"RCPT", Verb::Rcpt, kRelayed},
    {"DATA", Verb::Data, kRelayed | kEndsGroup},
    {"RSET", Verb::Rset, kPreTls | kPreAuth | kRelayed},
    {"NOOP", Verb::Noop, kPreTls | kPreAuth | kRelayed | kEndsGroup},
    {"QUIT", Verb::Quit, kPreTls | kPreAuth | kEndsGroup},
    {"HELP", Verb::Help, kPreTls | kPreAuth},
    {"VRFY", Verb::Vrfy, kRefused | kEndsGroup},
    {"EXPN", Verb::Expn, kRefused | kEndsGroup},
    {"ETRN", Verb::Etrn, kRefused},
    {"TURN", Verb::Turn, kRefused | kEndsGroup},
    {"BDAT", Verb::Bdat, kRefused},
    {"XCLIENT", Verb::Xclient, kRefused},
    {"XFORWARD", Verb::Xforward, kRefused},
    {"UNKNOWN", Verb::Unknown, kRefused},
}};

static_assert(static_cast<std::size_t>(Verb::Unknown) + 1 == kCommands.size(),
              "kCommands must have one row per Verb");

Verb lookupVerb(std::string_view word) {
    for (const CommandSpec& spec : kCommands) {
        if (spec.verb != Verb::Unknown && iequals(spec.name, word)) {
            return spec.verb;
        }
    }
    return Verb::Unknown;
}

std::string_view skipSpaces(std::string_view s) {
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    return s;
}

// Length of the path at the start of `s`: "<...>" (brackets included) or, as Postfix accepts
// with its default strict_rfc821_envelopes = no (and old mail programs send), a bare address
// up to the next space.  A quoted local part may hold spaces and '>'.  0 when there is no
// well-formed path.
std::size_t pathLength(std::string_view s) {
    const bool bracketed = !s.empty() && s.front() == '<';
    bool quoted = false;
    for (std::size_t i = bracketed ? 1 : 0; i < s.size(); ++i) {
        const auto byte = static_cast<unsigned char>(s[i]);
        if (byte < 0x20 || byte == 0x7f) {
            return 0;  // controls are never part of a path
        }
        if (quoted) {
            if (s[i] == '\\') {
                // quoted-pair = %d92 %d32-126 (RFC 5321): the escaped byte must be printable
                // too, or "\\<TAB>" would carry a control byte to the MSA.
                if (++i >= s.size() || static_cast<unsigned char>(s[i]) < 0x20 ||
                    static_cast<unsigned char>(s[i]) > 0x7e) {
                    return 0;
                }
            } else if (s[i] == '"') {
                quoted = false;
            }
            continue;
        }
        if (s[i] == '"') {
            quoted = true;
        } else if (bracketed && s[i] == '>') {
            return i + 1;
        } else if (s[i] == ' ') {
            return bracketed ? 0 : i;
        } else if (s[i] == '<' || s[i] == '>') {
            return 0;  // "a@b>", "<<a@b>>": Postfix guesses; we do not
        }
    }
    return bracketed || quoted ? 0 : s.size();
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") before an optional "=value"
// (RFC 5321 §4.1.2).  With bare paths allowed, "FROM:Alice <a@b>" would otherwise read as the
// path "Alice" with a parameter "<a@b>".
bool isEsmtpParam(std::string_view param) {
    const std::string_view keyword = param.substr(0, param.find('='));
    const auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (keyword.empty() || !alnum(keyword.front())) {
        return false;
    }
    for (char c : keyword) {
        if (!alnum(c) && c != '-') {
            return false;
        }
    }
    return true;
}

std::vector<std::string> splitParams(std::string_view rest) {
    std::vector<std::string> params;
    while (true) {
        rest = skipSpaces(rest);
        if (rest.empty()) {
            return params;
        }
        const std::size_t end = rest.find(' ');
        params.emplace_back(rest.substr(0, end));
        if (end == std::string_view::npos) {
            return params;
        }
        rest.remove_prefix(end);
    }
}

}  // namespace

const CommandSpec& commandSpec(Verb verb) {
    const auto index = static_cast<std::size_t>(verb);
    return index < kCommands.size() ? kCommands[index] : kCommands.back();
}

Command parseCommand(std::string_view line) {
    Command command;
    const std::size_t space = line.find(' ');
    const std::string_view word = line.substr(0, space);
    command.verb = lookupVerb(word);
    command.verbText = toUpper(word.substr(0, kMaxVerbText));
    if (space != std::string_view::npos) {
        std::string_view arg = skipSpaces(line.substr(space));
        while (!arg.empty() && arg.back() == ' ') {
            arg.remove_suffix(1);
        }
        command.arg = std::string(arg);
    }
    return command;
}

std::optional<PathCommand> parsePathCommand(std::string_view arg, std::string_view keyword) {
    if (arg.size() <= keyword.size() || !iequals(arg.substr(0, keyword.size()), keyword) ||
        arg[keyword.size()] != ':') {
        return std::nullopt;
    }
    const std::string_view rest = skipSpaces(arg.substr(keyword.size() + 1));
    const std::size_t length = pathLength(rest);
    const bool bracketed = length >= 2 && rest.front() == '<';
    const std::string_view path = bracketed ? rest.substr(1, length - 2) : rest.substr(0, length);
    if ((!bracketed && path.empty()) || path.size() > kMaxPath) {
        return std::nullopt;
    }
    const std::string_view after = rest.substr(length);
    if (!after.empty() && after.front() != ' ') {
        return std::nullopt;  // "<a@b>junk"
    }
    PathCommand out;
    out.path = std::string(path);
    out.params = splitParams(after);
    for (const std::string& param : out.params) {
        if (!isEsmtpParam(param)) {
            return std::nullopt;
        }
    }
    return out;
}

}  // namespace subproxy
