#include <boost/test/unit_test.hpp>

#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "ops/config.h"
#include "config_fixture.h"

using namespace subproxy;

namespace {

const std::string& kMinimal = testing::kMinimalConfig;

std::string errorOf(const std::string& text) { return testing::configError(text); }

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(minimal_uses_defaults) {
    Config c = parseConfig(kMinimal, "test.conf");
    BOOST_TEST(c.file == "test.conf");
    BOOST_TEST(!c.hostname.empty());
    BOOST_REQUIRE(c.listeners.size() == 1u);
    BOOST_TEST(c.listeners[0].address == "0.0.0.0");
    BOOST_TEST(c.listeners[0].port == 10025);
    BOOST_TEST((c.listeners[0].tls == ListenerTls::StartTls));
    BOOST_TEST(!c.listeners[0].transparent);
    BOOST_TEST(c.tls.cert == "/c.pem");
    BOOST_TEST(c.tls.key == "/k.pem");
    BOOST_TEST((c.auth.backend == AuthBackend::Sasl));
    BOOST_TEST(c.auth.mechanisms == (std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"}));
    BOOST_TEST(c.upstream.hosts == (std::vector<std::string>{"127.0.0.1"}));
    BOOST_TEST(c.upstream.port == 587);
    BOOST_TEST((c.upstream.login == UpstreamLogin::Xclient));
    BOOST_TEST(c.limits.commandLineLength == 2048);
    BOOST_TEST(c.limits.maxMessageSize == 50ull * 1024 * 1024);
    BOOST_TEST((c.dataBareNewline == BareNewline::Reject));
    BOOST_TEST(c.logFacility == "mail");
    BOOST_TEST((c.tls.minProtocol == TlsProtocol::Tls1_2));
    BOOST_TEST(c.tls.ciphers.empty());  // tls.cpp's AEAD-only profile
}

BOOST_AUTO_TEST_CASE(tls_min_protocol) {
    const std::pair<const char*, TlsProtocol> names[] = {{"TLSv1", TlsProtocol::Tls1_0},
                                                         {"TLSv1.1", TlsProtocol::Tls1_1},
                                                         {"TLSv1.2", TlsProtocol::Tls1_2},
                                                         {"tlsv1.3", TlsProtocol::Tls1_3}};
    for (const auto& [name, value] : names) {
        Config c = parseConfig("listen = ( { address = \"0.0.0.0\"; port = 10025; } );\n"
                               "tls = { cert = \"/c.pem\"; key = \"/k.pem\"; min_protocol = \"" +
                                   std::string(name) + "\"; };\n",
                               "t");
        BOOST_TEST((c.tls.minProtocol == value), name);
    }
    BOOST_TEST(errorOf("listen = ( { address = \"0.0.0.0\"; port = 10025; } );\n"
                       "tls = { cert = \"/c.pem\"; key = \"/k.pem\";\n"
                       "        min_protocol = \"SSLv3\"; };\n") ==
               "test.conf:3: invalid value \"SSLv3\" for 'tls.min_protocol': expected one of "
               "\"TLSv1\", \"TLSv1.1\", \"TLSv1.2\", \"TLSv1.3\"");
    BOOST_TEST(contains(errorOf("listen = ( { address = \"0.0.0.0\"; port = 10025; } );\n"
                                "tls = { cert = \"/c.pem\"; key = \"/k.pem\"; min_protocol = 1.2; };\n"),
                        "test.conf:2: 'tls.min_protocol' must be a string"));
}

BOOST_AUTO_TEST_CASE(full_configuration) {
    const std::string text =
        "hostname = \"smtp.isp.example\";\n"
        "listen = ( { address = \"0.0.0.0\"; port = 10025; },\n"
        "           { address = \"::\"; port = 10465; tls = \"implicit\"; transparent = true; } );\n"
        "tls = { cert = \"/c.pem\"; key = \"/k.pem\"; ciphers = \"HIGH\"; min_protocol = \"TLSv1.1\"; };\n"
        "auth = { backend = \"sasl\"; mechanisms = [ \"plain\", \"LOGIN\" ];\n"
        "         sasl_service = \"svc\"; sasl_config_dir = \"/etc/x\"; sasl_realm = \"r\";\n"
        "         workers = 2; max_workers = 3; timeout = 5; };\n"
        "upstream = { host = [ \"msa1\", \"msa2\" ]; port = 465; tls = \"implicit\";\n"
        "             verify = false; ca_file = \"/ca\"; server_name = \"msa\";\n"
        "             login = \"replay\"; helo_name = \"proxy\"; connect_timeout = 7;\n"
        "             reply_timeout = 8; data_done_timeout = 9; };\n"
        "limits = { max_sessions = 10; command_line_length = 600; auth_line_length = 700;\n"
        "           max_errors = 5; max_auth_failures = 4; greeting_timeout = 11;\n"
        "           command_timeout = 12; data_timeout = 13; tls_handshake_timeout = 14;\n"
        "           max_message_size = 5000000000L; max_pipelined = 15; shutdown_grace = 16;\n"
        "           pre_auth_timeout = 17; stress_threshold = 60; stress_command_timeout = 18;\n"
        "           stress_pre_auth_timeout = 19; };\n"
        "replies = { auth_required = \"Use 587\"; tls_required = \"TLS please\"; auth_failed = \"Wrong\"; };\n"
        "data_bare_newline = \"normalize\";\n"
        "log_facility = \"local3\";\n";
    Config c = parseConfig(text, "full.conf");
    BOOST_TEST(c.hostname == "smtp.isp.example");
    BOOST_REQUIRE(c.listeners.size() == 2u);
    BOOST_TEST(c.listeners[1].address == "::");
    BOOST_TEST((c.listeners[1].tls == ListenerTls::Implicit));
    BOOST_TEST(c.listeners[1].transparent);
    BOOST_TEST(c.tls.ciphers == "HIGH");
    BOOST_TEST((c.tls.minProtocol == TlsProtocol::Tls1_1));
    BOOST_TEST(c.auth.mechanisms == (std::vector<std::string>{"PLAIN", "LOGIN"}));
    BOOST_TEST(c.auth.saslService == "svc");
    BOOST_TEST(c.auth.saslRealm == "r");
    BOOST_TEST(c.auth.workers == 2);
    BOOST_TEST(c.auth.maxWorkers == 3);
    BOOST_TEST(c.auth.timeout == 5);
    BOOST_TEST(c.upstream.hosts == (std::vector<std::string>{"msa1", "msa2"}));
    BOOST_TEST(c.upstream.port == 465);
    BOOST_TEST((c.upstream.tls == UpstreamTls::Implicit));
    BOOST_TEST(!c.upstream.verify);
    BOOST_TEST(c.upstream.caFile == "/ca");
    BOOST_TEST(c.upstream.serverName == "msa");
    BOOST_TEST((c.upstream.login == UpstreamLogin::Replay));
    BOOST_TEST(c.upstream.heloName == "proxy");
    BOOST_TEST(c.upstream.connectTimeout == 7);
    BOOST_TEST(c.upstream.replyTimeout == 8);
    BOOST_TEST(c.upstream.dataDoneTimeout == 9);
    BOOST_TEST(c.limits.maxSessions == 10);
    BOOST_TEST(c.limits.commandLineLength == 600);
    BOOST_TEST(c.limits.authLineLength == 700);
    BOOST_TEST(c.limits.maxErrors == 5);
    BOOST_TEST(c.limits.maxAuthFailures == 4);
    BOOST_TEST(c.limits.greetingTimeout == 11);
    BOOST_TEST(c.limits.commandTimeout == 12);
    BOOST_TEST(c.limits.dataTimeout == 13);
    BOOST_TEST(c.limits.tlsHandshakeTimeout == 14);
    BOOST_TEST(c.limits.maxMessageSize == 5000000000ull);
    BOOST_TEST(c.limits.maxPipelined == 15);
    BOOST_TEST(c.limits.shutdownGrace == 16);
    BOOST_TEST(c.limits.preAuthTimeout == 17);
    BOOST_TEST(c.limits.stressThreshold == 60);
    BOOST_TEST(c.limits.stressCommandTimeout == 18);
    BOOST_TEST(c.limits.stressPreAuthTimeout == 19);
    BOOST_TEST(c.replies.authRequired == "Use 587");
    BOOST_TEST(c.replies.tlsRequired == "TLS please");
    BOOST_TEST(c.replies.authFailed == "Wrong");
    BOOST_TEST((c.dataBareNewline == BareNewline::Normalize));
    BOOST_TEST(c.logFacility == "local3");
}

BOOST_AUTO_TEST_CASE(upstream_host_as_string) {
    Config c = parseConfig(kMinimal + "upstream = { host = \"original\"; tls = \"none\"; };",
                           "t");
    BOOST_TEST(c.upstream.hosts == (std::vector<std::string>{"original"}));
    BOOST_TEST((c.upstream.tls == UpstreamTls::None));
}

BOOST_AUTO_TEST_CASE(unknown_keys_name_file_line_and_path) {
    BOOST_TEST(errorOf(kMinimal + "upstream = {\n  hots = \"x\";\n};\n") ==
               "test.conf:4: unknown key 'upstream.hots'");
    BOOST_TEST(errorOf(kMinimal + "lisen = 1;\n") == "test.conf:3: unknown key 'lisen'");
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { stress_threshold = 101; };"), "stress_threshold"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_sesions = 1; };"),
                        "unknown key 'limits.max_sesions'"));
    BOOST_TEST(contains(
        errorOf("listen = ( { address = \"127.0.0.1\"; port = 1; tsl = \"implicit\"; } );\n"
                "tls = { cert = \"c\"; key = \"k\"; };"),
        "test.conf:1: unknown key"));
}

BOOST_AUTO_TEST_CASE(wrong_types) {
    BOOST_TEST(errorOf(kMinimal + "upstream = { port = \"587\"; };") ==
               "test.conf:3: 'upstream.port' must be an integer");
    BOOST_TEST(errorOf(kMinimal + "upstream = { verify = 1; };") ==
               "test.conf:3: 'upstream.verify' must be a boolean (true or false)");
    BOOST_TEST(errorOf(kMinimal + "hostname = 5;") == "test.conf:3: 'hostname' must be a string");
    BOOST_TEST(contains(errorOf(kMinimal + "auth = 1;"), "'auth' must be a group"));
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { host = 1; };"),
                        "'upstream.host' must be a string or a list of strings"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_errors = 1.5; };"),
                        "'limits.max_errors' must be an integer"));
}

BOOST_AUTO_TEST_CASE(bad_enum_values_list_allowed) {
    BOOST_TEST(errorOf(kMinimal + "upstream = { tls = \"ssl\"; };") ==
               "test.conf:3: invalid value \"ssl\" for 'upstream.tls': expected one of "
               "\"starttls\", \"implicit\", \"none\"");
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { login = \"auth\"; };"),
                        "\"xclient\", \"replay\", \"none\""));
    BOOST_TEST(contains(errorOf(kMinimal + "auth = { backend = \"pam\"; };"),
                        "\"sasl\", \"upstream\""));
    BOOST_TEST(contains(errorOf(kMinimal + "data_bare_newline = \"fix\";"),
                        "\"reject\", \"normalize\""));
    BOOST_TEST(contains(errorOf(kMinimal + "log_facility = \"local8\";"), "'log_facility'"));
    BOOST_TEST(contains(errorOf(kMinimal + "auth = { mechanisms = [ \"GSSAPI\" ]; };"),
                        "invalid mechanism \"GSSAPI\""));
    BOOST_TEST(contains(
        errorOf("listen = ( { address = \"127.0.0.1\"; port = 1; tls = \"none\"; } );\n"
                "tls = { cert = \"c\"; key = \"k\"; };"),
        "\"starttls\", \"implicit\""));
}

BOOST_AUTO_TEST_CASE(integer_ranges) {
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { port = 0; };"),
                        "'upstream.port' must be between 1 and 65535, not 0"));
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { port = 65536; };"), "not 65536"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_errors = -1; };"), "not -1"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_errors = 0; };"), "not 0"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_message_size = 0L; };"), "not 0"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_sessions = 3000000000L; };"),
                        "must be between 1 and 2147483647"));
    BOOST_TEST(errorOf("listen = ( { address = \"127.0.0.1\"; port = 70000; } );\n"
                       "tls = { cert = \"c\"; key = \"k\"; };") ==
               "test.conf:1: 'listen.[0].port' must be between 1 and 65535, not 70000");
}

BOOST_AUTO_TEST_CASE(tls_detect_ms) {
    BOOST_TEST(parseConfig(kMinimal, "test.conf").limits.tlsDetectMs == 200);
    BOOST_TEST(parseConfig(kMinimal + "limits = { tls_detect_ms = 0; };", "test.conf").limits.tlsDetectMs == 0);
    BOOST_TEST(parseConfig(kMinimal + "limits = { tls_detect_ms = 5000; };", "test.conf").limits.tlsDetectMs == 5000);
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { tls_detect_ms = 5001; };"),
                        "'limits.tls_detect_ms' must be between 0 and 5000, not 5001"));
}

BOOST_AUTO_TEST_CASE(upstream_probe_interval) {
    BOOST_TEST(parseConfig(kMinimal, "test.conf").upstream.probeInterval == 600);
    BOOST_TEST(parseConfig(kMinimal + "upstream = { probe_interval = 0; };", "test.conf").upstream.probeInterval == 0);
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { probe_interval = -1; };"),
                        "'upstream.probe_interval' must be between 0 and 86400, not -1"));
}

BOOST_AUTO_TEST_CASE(int_overflow_without_l_suffix_is_refused) {
    // libconfig wraps 5000000000 to 705032704 silently; we must not accept that.
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_message_size = 5000000000; };"),
                        "L suffix"));
    BOOST_TEST(contains(errorOf(kMinimal + "limits = {\n  max_sessions = 2147483648;\n};"),
                        "test.conf:4: 'limits.max_sessions' is too large"));
    Config c = parseConfig(kMinimal + "limits = { max_message_size = 2000000000; };", "t");
    BOOST_TEST(c.limits.maxMessageSize == 2000000000u);
    c = parseConfig(kMinimal + "limits = { max_message_size = 0x100000; };", "t");
    BOOST_TEST(c.limits.maxMessageSize == 0x100000u);
}

BOOST_AUTO_TEST_CASE(required_settings) {
    BOOST_TEST(contains(errorOf("tls = { cert = \"c\"; key = \"k\"; };"),
                        "missing required setting 'listen'"));
    BOOST_TEST(contains(errorOf("listen = ();\ntls = { cert = \"c\"; key = \"k\"; };"),
                        "test.conf:1: 'listen' must hold at least one listener"));
    BOOST_TEST(contains(errorOf("listen = ( { address = \"127.0.0.1\"; port = 1; } );"),
                        "missing required group 'tls'"));
    BOOST_TEST(contains(errorOf("listen = ( { address = \"127.0.0.1\"; port = 1; } );\n"
                                "tls = { cert = \"c\"; };"),
                        "test.conf:2: missing required setting 'tls.key'"));
    BOOST_TEST(contains(errorOf("listen = ( { address = \"127.0.0.1\"; port = 1; } );\n"
                                "tls = { key = \"k\"; };"),
                        "'tls.cert'"));
    BOOST_TEST(contains(errorOf("listen = ( { port = 1; } );\ntls = { cert = \"c\"; key = \"k\"; };"),
                        "address"));
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { host = []; };"), "must not be empty"));
    BOOST_TEST(contains(errorOf(kMinimal + "upstream = { host = \"\"; };"), "must not be empty"));
    BOOST_TEST(contains(errorOf(kMinimal + "auth = { mechanisms = []; };"), "must not be empty"));
}

BOOST_AUTO_TEST_CASE(cross_setting_rules) {
    BOOST_TEST(errorOf(kMinimal + "auth = { mechanisms = [\"PLAIN\", \"CRAM-MD5\"]; };\n"
                                  "upstream = { login = \"replay\"; };") ==
               "test.conf:3: CRAM-MD5 cannot be replayed to the MSA; remove it from "
               "auth.mechanisms or use login = \"xclient\"");
    // The default mechanism list quietly loses CRAM-MD5 under replay.
    Config c = parseConfig(kMinimal + "upstream = { login = \"replay\"; };", "t");
    BOOST_TEST(c.auth.mechanisms == (std::vector<std::string>{"PLAIN", "LOGIN"}));
    BOOST_TEST(contains(errorOf(kMinimal + "auth = { backend = \"upstream\"; };\n"
                                           "upstream = { login = \"replay\"; };"),
                        "test.conf:4: login = \"replay\" cannot be used"));
    BOOST_TEST(errorOf(kMinimal + "auth = { backend = \"upstream\"; };").empty());
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { command_line_length = 5000; };"),
                        "'limits.auth_line_length' (12288)") == false);
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { command_line_length = 20000; };"),
                        "must not be smaller than 'limits.command_line_length' (20000)"));
    BOOST_TEST(contains(errorOf(kMinimal + "auth = { workers = 20; };"),
                        "'auth.max_workers' (16) must not be smaller than 'auth.workers' (20)"));
}

BOOST_AUTO_TEST_CASE(reply_text_must_be_one_clean_line) {
    BOOST_TEST(contains(errorOf(kMinimal + "replies = { auth_required = \"a\\nb\"; };"),
                        "control characters"));
    BOOST_TEST(contains(errorOf(kMinimal + "replies = { tls_required = \"\"; };"),
                        "must not be empty"));
    BOOST_TEST(contains(errorOf(kMinimal + "replies = { auth_failed = \"a\\tb\"; };"),
                        "control characters"));
}

// RFC 5321 §4.5.3.1.5: "530 5.7.0 " + text + CRLF within 512 octets.
BOOST_AUTO_TEST_CASE(reply_text_must_fit_a_reply_line) {
    const std::string fits(500, 'x');
    Config c = parseConfig(kMinimal + "replies = { tls_required = \"" + fits + "\"; };", "t");
    BOOST_TEST(c.replies.tlsRequired == fits);
    BOOST_TEST(errorOf(kMinimal + "replies = {\n auth_required = \"" + fits + "y\"; };") ==
               "test.conf:4: 'replies.auth_required' is 501 characters; a reply line must fit in "
               "512 octets, so at most 500");
    BOOST_TEST(contains(errorOf(kMinimal + "replies = { auth_failed = \"" + fits + "y\"; };"),
                        "'replies.auth_failed' is 501 characters"));
}

// Issue 7 item 5: what a legacy customer reads tells them what to change.
BOOST_AUTO_TEST_CASE(default_replies_teach_and_fit) {
    const Replies r;
    for (const std::string* text : {&r.tlsRequired, &r.authRequired}) {
        BOOST_TEST(contains(*text, "port 587"), *text);
        BOOST_TEST(contains(*text, "STARTTLS"), *text);
        BOOST_TEST(contains(*text, "password"), *text);
    }
    BOOST_TEST(contains(r.authFailed, "password"));
    for (const std::string* text : {&r.tlsRequired, &r.authRequired, &r.authFailed}) {
        BOOST_TEST(text->size() <= Replies::kMaxReplyText, *text);
    }
}

BOOST_AUTO_TEST_CASE(parse_errors_carry_line) {
    BOOST_TEST(errorOf("listen = (\n  { port = 1 }\n  oops\n);") .rfind("test.conf:", 0) == 0u);
    BOOST_TEST(contains(errorOf("a = 1;\na = 2;\n"), "test.conf:2:"));
}

BOOST_AUTO_TEST_CASE(config_error_format) {
    BOOST_TEST(std::string(ConfigError("f.conf", 3, "bad").what()) == "f.conf:3: bad");
    BOOST_TEST(std::string(ConfigError("f.conf", 0, "bad").what()) == "f.conf: bad");
    ConfigError e("x", 7, "m");
    BOOST_TEST(e.file == "x");
    BOOST_TEST(e.line == 7);
}

BOOST_AUTO_TEST_CASE(load_from_file) {
    char dir[] = "/tmp/subproxy-config-XXXXXX";
    BOOST_REQUIRE(mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/subproxy.conf";
    {
        std::ofstream out(path);
        out << kMinimal << "upstream = {\n  port = 99999;\n};\n";
    }
    try {
        loadConfig(path);
        BOOST_FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
        BOOST_TEST(e.file == path);
        BOOST_TEST(e.line == 4);
    }
    {
        std::ofstream out(path);
        out << kMinimal;
    }
    Config c = loadConfig(path);
    BOOST_TEST(c.file == path);
    BOOST_TEST(c.listeners.size() == 1u);
    std::remove(path.c_str());
    try {
        loadConfig(path);
        BOOST_FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
        BOOST_TEST(std::string(e.what()) ==
                   path + ": cannot read configuration file: No such file or directory");
        BOOST_TEST(e.line == 0);
    }
    rmdir(dir);
}

BOOST_AUTO_TEST_CASE(syslog_facilities) {
    BOOST_TEST(syslogFacility("mail") == LOG_MAIL);
    BOOST_TEST(syslogFacility("daemon") == LOG_DAEMON);
    BOOST_TEST(syslogFacility("local0") == LOG_LOCAL0);
    BOOST_TEST(syslogFacility("local7") == LOG_LOCAL7);
    BOOST_TEST(syslogFacility("authpriv") == LOG_AUTHPRIV);
    BOOST_TEST(syslogFacility("kern") == -1);
    BOOST_TEST(syslogFacility("") == -1);
}


BOOST_AUTO_TEST_CASE(several_listeners_on_one_line_are_not_mistaken_for_wrapped_integers) {
    // Regression: the overflow check re-read "port = ..." from the source line and compared it
    // with the wrong listener's value when a whole list sat on one line.
    Config c = parseConfig(
        "listen = ( { address = \"127.0.0.1\"; port = 10025; }, { address = \"::1\"; port = 10465; "
        "tls = \"implicit\"; } );\ntls = { cert = \"/c\"; key = \"/k\"; };\n",
        "test.conf");
    BOOST_REQUIRE(c.listeners.size() == 2u);
    BOOST_TEST(c.listeners[1].port == 10465);
    BOOST_TEST(contains(errorOf(kMinimal + "limits = { max_message_size = 5000000000; };\n"), "L suffix"));
}

BOOST_AUTO_TEST_CASE(listen_address_must_be_numeric) {
    const std::string e = errorOf("listen = ( { address = \"localhost\"; port = 25; } );\n"
                                  "tls = { cert = \"/c\"; key = \"/k\"; };\n");
    BOOST_TEST(contains(e, "test.conf:1:"));
    BOOST_TEST(contains(e, "numeric"));
}

BOOST_AUTO_TEST_CASE(login_none_with_local_sasl_is_refused) {
    // Anonymous MSA sessions would only work if the MSA trusted the proxy: an open relay.
    const std::string e = errorOf(kMinimal + "upstream = { login = \"none\"; };\n");
    BOOST_TEST(contains(e, "test.conf:3:"));
    BOOST_TEST(contains(e, "anonymous"));
    BOOST_TEST(errorOf(kMinimal + "auth = { backend = \"upstream\"; };\nupstream = { login = \"none\"; };\n")
                   .empty());
}

// libconfig only says "duplicate setting name": the message names the setting, its path and
// where it was set first, at the line of the second one.
BOOST_AUTO_TEST_CASE(duplicate_setting_is_named_with_both_lines) {
    BOOST_TEST(errorOf(kMinimal + "upstream = {\n  host = \"msa\";\n  port = 587;\n  port = 588;\n};\n") ==
               "test.conf:6: duplicate setting 'upstream.port' (already set at line 5); remove one of them");
    BOOST_TEST(errorOf(kMinimal + "hostname = \"a\";\n# hostname = \"in a comment\";\n"
                                  "replies = { auth_required = \"hostname = x;\"; };\nhostname = \"b\";\n") ==
               "test.conf:6: duplicate setting 'hostname' (already set at line 3); remove one of them");
    // Each group of a list has its own names; the same name in another group is no duplicate.
    BOOST_TEST(errorOf("listen = ( { address = \"0.0.0.0\"; port = 10025; },\n"
                       "           { address = \"::\"; port = 10025; /* port */ port = 10026; } );\n"
                       "tls = { cert = \"/c.pem\"; key = \"/k.pem\"; };\nstatus = { port = 1; };\n") ==
               "test.conf:2: duplicate setting 'listen.[1].port' (already set at line 2); remove one of them");
    BOOST_TEST(errorOf(kMinimal + "upstream = { port = 587; };\nstatus = { port = 9425; };\n").empty());
    // Text after the duplicate is never parsed by libconfig and may end anywhere, even inside
    // a string or an escape (found by fuzz_config).
    for (const char* tail : {"x = \"\\", "x = \"abc", "/* open", "# c", "x = (", "}}}", ")"}) {
        BOOST_TEST(errorOf(kMinimal + "hostname = \"a\";\nhostname = \"b\";\n" + tail) ==
                   "test.conf:4: duplicate setting 'hostname' (already set at line 3); remove one of them");
    }
}

BOOST_AUTO_TEST_CASE(log_file_is_read_and_must_not_be_empty) {
    BOOST_TEST(parseConfig(kMinimal, "t.conf").logFile.empty());
    BOOST_TEST(parseConfig(kMinimal + "log_file = \"/var/log/subproxy/subproxy.log\";\n", "t.conf").logFile ==
               "/var/log/subproxy/subproxy.log");
    BOOST_TEST(contains(errorOf(kMinimal + "log_file = \"\";\n"), "'log_file' must not be empty"));
    BOOST_TEST(contains(errorOf(kMinimal + "log_file = 1;\n"), "'log_file' must be a string"));
}

BOOST_AUTO_TEST_CASE(log_facility_is_case_insensitive) {
    BOOST_TEST(syslogFacility("LOCAL3") == LOG_LOCAL3);
    BOOST_TEST(errorOf(kMinimal + "log_facility = \"Mail\";\n").empty());
}

BOOST_AUTO_TEST_CASE(relative_paths_are_relative_to_the_config_file) {
    char dir[] = "/tmp/subproxy-conf.XXXXXX";
    BOOST_REQUIRE(mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/subproxy.conf";
    {
        std::ofstream out(path);
        out << "listen = ( { address = \"0.0.0.0\"; port = 10025; } );\n"
               "tls = { cert = \"certs/c.pem\"; key = \"/abs/k.pem\"; };\n"
               "auth = { sasl_config_dir = \"sasl\"; };\n"
               "log_file = \"log/subproxy.log\";\n";
    }
    Config c = loadConfig(path);
    BOOST_TEST(c.logFile == std::string(dir) + "/log/subproxy.log");
    BOOST_TEST(c.tls.cert == std::string(dir) + "/certs/c.pem");
    BOOST_TEST(c.tls.key == "/abs/k.pem");
    BOOST_TEST(c.auth.saslConfigDir == std::string(dir) + "/sasl");
    std::remove(path.c_str());
    rmdir(dir);
}

BOOST_AUTO_TEST_SUITE_END()
