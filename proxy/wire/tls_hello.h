// What a customer's TLS ClientHello offered, turned into words for the log and the migration
// report.  Pure: tls.cpp records the raw fields from OpenSSL's ClientHello callback and looks
// up the cipher names; the wording and the bounds live here, unit-tested.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace subproxy {

// "TLSv1.0" .. "TLSv1.3", "SSLv3", or the number (hex16) for anything else.
std::string tlsVersionName(int version);
// "0x0305": a 16-bit wire value (a version or cipher suite OpenSSL has no name for).
std::string hex16(int value);

// The versions listed in a supported_versions extension body (RFC 8446 §4.2.1: a length
// byte, then 2-byte versions), GREASE values (RFC 8701) left out; empty when malformed.
std::vector<int> parseSupportedVersions(std::string_view extension);

// True for the GREASE values (RFC 8701: 0x0A0A, 0x1A1A, .. 0xFAFA) clients put among their
// cipher suites and versions to keep servers honest; they say nothing about the client.
bool isGrease(int value);

struct ClientHelloSummary {
    int legacyVersion = 0;               // ClientHello.legacy_version (the only one before 1.3)
    std::vector<int> supportedVersions;  // from the extension; empty when the client sent none
    std::vector<int> cipherSuites;       // in the client's order, GREASE left out
};

// "client offered TLSv1.0, ciphers: AES128-SHA, AES256-SHA, ..." cut to about `maxLength`
// bytes at a whole name, with a count of what was left out ("... and 12 more").  `name`
// turns a suite into its name; it is asked only for the suites shown, so a hostile hello
// with thousands of suites costs no more than a short one.
std::string describeClientHello(const ClientHelloSummary& hello, const std::function<std::string(int)>& name,
                                std::size_t maxLength = 300);

}  // namespace subproxy
