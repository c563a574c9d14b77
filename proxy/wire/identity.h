// Who the customer is (issue 8 items 5 and 6): the checks on the names a customer types in AUTH,
// made before any password backend sees them, and the one spelling of an account that the
// guard, the log, the migration report and the MSA (XCLIENT LOGIN) see.  Pure: no I/O.
//
// Cyrus (2.1.28) reads a user name up to its first NUL (LOGIN, CRAM-MD5), strips surrounding
// white space (canonuser), and looks a bare name up in the default realm: "alice",
// " alice" and "alice@<realm>" are one account.  Anything that spells one account in
// several ways must come out of here as one name, or a guesser gets a fresh per-user counter
// for every spelling and the MSA sees several senders.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace subproxy {

struct Config;

// Longest user name accepted at AUTH, in octets: RFC 4616's limit for PLAIN's fields, applied
// to every mechanism.  With upstream.login = "xclient" the name must also fit Postfix's
// XCLIENT attribute limit once xtext-encoded (kXclientMaxValue, xtext.h).
constexpr std::size_t kMaxUserName = 255;

// The realm a bare user name is looked up in: auth.sasl_realm, or hostname when that is empty
// (Cyrus' default, the server name subproxy passes to sasl_server_new).
std::string defaultRealm(const Config& config);

enum class NameCheck {
    Ok,
    ControlCharacters,  // a byte below 0x20 (NUL, CR, LF, TAB...) or 0x7F
    TooLong,            // over kMaxUserName octets, or over the XCLIENT limit once encoded
};

// A user name (PLAIN authcid, LOGIN user name, CRAM-MD5 user) as typed.  `xclientLogin`: the
// name will travel as XCLIENT LOGIN=, so its canonical form must fit Postfix's limit.
NameCheck checkUserName(std::string_view name, std::string_view realm, bool xclientLogin);
// An authorization identity (PLAIN authzid): control characters only; its length is the
// user name's (it must be empty or equal to it).
NameCheck checkAuthzid(std::string_view authzid);

// The account's one spelling: surrounding spaces removed (as Cyrus' canonuser does), and
// "@realm" removed when realm is `realm` (compared without regard to case, as domain names
// are).  The realm part starts at the first '@', as in Cyrus' sasldb lookup.  Case is kept:
// sasldb tells "Alice" from "alice".
//   "alice", " alice ", "alice@proxy.test", "alice@PROXY.TEST" -> "alice"   (realm proxy.test)
//   "alice@other.example", "alice@x@proxy.test"                -> unchanged
std::string canonicalUser(std::string_view name, std::string_view realm);

// Key of the guard's per-user counters: canonicalUser() in ASCII lower case.  Folding case can
// only merge counters, never split them: with a backend that ignores case (saslauthd with
// LDAP or PAM) "ALICE" and "alice" are one account and must share one count.
std::string userKey(std::string_view name, std::string_view realm);

}  // namespace subproxy
