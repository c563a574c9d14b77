// parseConfig: any text either yields a Config or throws ConfigError; no other exception, no
// crash.  An accepted Config satisfies the basic guarantees the daemon relies on.
#include <exception>
#include <string>

#include "ops/config.h"
#include "fuzz_util.h"

using namespace subproxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (text.find("@include") != std::string::npos) {
        return 0;  // reads other files (e.g. /dev/zero): operator-controlled, not fuzzed here
    }
    try {
        const Config c = parseConfig(text, "fuzz.conf");
        FUZZ_CHECK(!c.listeners.empty(), "an accepted config has a listener");
        for (const auto& l : c.listeners) {
            FUZZ_CHECK(l.port > 0 && l.port <= 65535, "listener port in 1..65535");
        }
        FUZZ_CHECK(!c.upstream.hosts.empty(), "at least one upstream host");
        FUZZ_CHECK(c.upstream.port > 0 && c.upstream.port <= 65535, "upstream port in 1..65535");
        FUZZ_CHECK(c.limits.commandLineLength > 0 && c.limits.authLineLength > 0, "line limits positive");
        FUZZ_CHECK(c.limits.maxErrors > 0 && c.limits.maxAuthFailures > 0, "error limits positive");
        FUZZ_CHECK(c.limits.maxPipelined > 0, "maxPipelined positive");
        FUZZ_CHECK(!c.auth.mechanisms.empty(), "at least one mechanism");
        for (const auto& z : c.dnsbl.zones) {
            FUZZ_CHECK(!z.zone.empty(), "dnsbl zones named");
        }
    } catch (const ConfigError& e) {
        FUZZ_CHECK(e.what() != nullptr, "ConfigError has a message");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected exception: %s: %s\n", typeid(e).name(), e.what());
        FUZZ_CHECK(false, "parseConfig throws only ConfigError");
    } catch (...) {
        FUZZ_CHECK(false, "parseConfig throws only ConfigError (non-std exception)");
    }
    return 0;
}

// libconfig's own scanner leaks its string buffer on some syntax errors (strbuf_append in
// libconfig++.so, not our code): suppress that one so the target keeps looking for ours.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:strbuf_append\nleak:libconfig++.so\nleak:libconfig.so\n";
}
