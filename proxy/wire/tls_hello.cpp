#include "wire/tls_hello.h"

#include <cstdio>

#include "wire/text_util.h"

namespace subproxy {

std::string tlsVersionName(int version) {
    switch (version) {
    case 0x0300:
        return "SSLv3";
    case 0x0301:
        return "TLSv1.0";
    case 0x0302:
        return "TLSv1.1";
    case 0x0303:
        return "TLSv1.2";
    case 0x0304:
        return "TLSv1.3";
    default:
        return hex16(version);
    }
}

std::string hex16(int value) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%04X", static_cast<unsigned>(value) & 0xffffu);
    return buf;
}

bool isGrease(int value) {
    return (value & 0x0f0f) == 0x0a0a && ((value >> 8) & 0xff) == (value & 0xff);
}

std::vector<int> parseSupportedVersions(std::string_view extension) {
    std::vector<int> out;
    if (extension.empty()) {
        return out;
    }
    const auto length = static_cast<unsigned char>(extension[0]);
    if (length % 2 != 0 || length + 1u != extension.size()) {
        return out;  // malformed: OpenSSL refuses the hello anyway; report the legacy version
    }
    for (std::size_t i = 1; i + 1 < extension.size(); i += 2) {
        const int v = (static_cast<unsigned char>(extension[i]) << 8) | static_cast<unsigned char>(extension[i + 1]);
        if (!isGrease(v)) {
            out.push_back(v);
        }
    }
    return out;
}

std::string describeClientHello(const ClientHelloSummary& hello, const std::function<std::string(int)>& name,
                                std::size_t maxLength) {
    std::vector<std::string> versions;
    for (int v : hello.supportedVersions) {
        versions.push_back(tlsVersionName(v));
    }
    std::string out = "client offered " +
                      (versions.empty() ? tlsVersionName(hello.legacyVersion) : join(versions, "/")) +
                      ", ciphers: ";
    const auto& suites = hello.cipherSuites;
    if (suites.empty()) {
        return out + "none";
    }
    // The list is the part that can be long (a browser sends ~40 suites, a hostile client up
    // to 32k): whole names up to the bound, then how many were left out.
    for (std::size_t i = 0; i < suites.size(); ++i) {
        const std::string text = name(suites[i]);
        if (i > 0 && out.size() + 2 + text.size() > maxLength) {
            return out + ", ... and " + std::to_string(suites.size() - i) + " more";
        }
        out += (i ? ", " : "") + text;
    }
    return out;
}

}  // namespace subproxy
