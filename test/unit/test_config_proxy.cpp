// Issue 11: PROXY protocol listeners and upstream, the customer's host name lookup.
#include <boost/test/unit_test.hpp>

#include "config_fixture.h"

using namespace subproxy;
using subproxy::testing::configError;
using subproxy::testing::kMinimalConfig;

namespace {

const std::string kTls = "tls = { cert = \"/c.pem\"; key = \"/k.pem\"; };\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(config_proxy)

BOOST_AUTO_TEST_CASE(defaults) {
    const Config c = parseConfig(kMinimalConfig, "t.conf");
    BOOST_TEST(!c.listeners[0].proxyProtocol);
    BOOST_TEST(c.listeners[0].trustedProxies.empty());
    BOOST_TEST(c.limits.proxyHeaderTimeout == 5);
    BOOST_TEST(!c.upstream.proxyProtocol);
    BOOST_TEST(c.clientName.lookup);
    BOOST_TEST(c.clientName.timeoutMs == 2000);
    BOOST_TEST(c.clientName.nameservers.empty());
}

BOOST_AUTO_TEST_CASE(proxy_protocol_listener) {
    const Config c = parseConfig(
        "listen = ( { address = \"0.0.0.0\"; port = 10025; proxy_protocol = true;\n"
        "             trusted_proxies = [ \"10.0.0.2\", \"2001:db8::/64\" ]; } );\n" + kTls +
            "limits = { proxy_header_timeout = 2; };\n",
        "t.conf");
    BOOST_TEST(c.listeners[0].proxyProtocol);
    BOOST_TEST(c.listeners[0].trustedProxies.contains(std::string_view("10.0.0.2")));
    BOOST_TEST(c.listeners[0].trustedProxies.contains(std::string_view("2001:db8::5")));
    BOOST_TEST(!c.listeners[0].trustedProxies.contains(std::string_view("10.0.0.3")));
    BOOST_TEST(c.limits.proxyHeaderTimeout == 2);
}

BOOST_AUTO_TEST_CASE(proxy_protocol_needs_trusted_proxies) {
    const std::string e = configError(
        "listen = ( { address = \"0.0.0.0\"; port = 10025; proxy_protocol = true; } );\n" + kTls);
    BOOST_TEST(e.find("test.conf:1:") == 0, e);
    BOOST_TEST(e.find("'listen.[0].trusted_proxies'") != std::string::npos, e);
    const std::string empty = configError(
        "listen = ( { address = \"0.0.0.0\"; port = 10025; proxy_protocol = true; trusted_proxies = []; } );\n" + kTls);
    BOOST_TEST(empty.find("trusted_proxies") != std::string::npos, empty);
}

BOOST_AUTO_TEST_CASE(trusted_proxies_only_with_proxy_protocol) {
    const std::string e = configError(
        "listen = ( { address = \"0.0.0.0\"; port = 10025; trusted_proxies = [ \"10.0.0.2\" ]; } );\n" + kTls);
    BOOST_TEST(e.find("only with proxy_protocol = true") != std::string::npos, e);
    const std::string bad = configError(
        "listen = ( { address = \"0.0.0.0\"; port = 10025; proxy_protocol = true;\n"
        "             trusted_proxies = [ \"lb.example\" ]; } );\n" + kTls);
    BOOST_TEST(bad.find("invalid address or CIDR block \"lb.example\"") != std::string::npos, bad);
}

BOOST_AUTO_TEST_CASE(upstream_proxy_protocol_and_login) {
    Config c = parseConfig(kMinimalConfig + "upstream = { login = \"replay\"; proxy_protocol = true; };\n", "t.conf");
    BOOST_TEST(c.upstream.proxyProtocol);
    c = parseConfig(kMinimalConfig + "auth = { backend = \"upstream\"; };\n"
                                     "upstream = { login = \"none\"; proxy_protocol = true; };\n",
                    "t.conf");
    BOOST_TEST(c.upstream.proxyProtocol);
    const std::string e = configError(kMinimalConfig + "upstream = {\n  proxy_protocol = true;\n};\n");
    BOOST_TEST(e.find("test.conf:4:") == 0, e);
    BOOST_TEST(e.find("login = \"xclient\"") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(client_name_group) {
    const Config c = parseConfig(
        kMinimalConfig + "client_name = { lookup = false; timeout_ms = 500; nameserver = [ \"127.0.0.1:5353\" ]; };\n",
        "t.conf");
    BOOST_TEST(!c.clientName.lookup);
    BOOST_TEST(c.clientName.timeoutMs == 500);
    BOOST_TEST(c.clientName.nameservers.size() == 1u);
    BOOST_TEST(configError(kMinimalConfig + "client_name = { timeout_ms = 50; };\n").find("timeout_ms") !=
               std::string::npos);
    const std::string ns = configError(kMinimalConfig + "client_name = { nameserver = [ \"dns.example\" ]; };\n");
    BOOST_TEST(ns.find("in 'client_name.nameserver'") != std::string::npos, ns);
    BOOST_TEST(configError(kMinimalConfig + "client_name = { lookups = true; };\n").find("lookups") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
