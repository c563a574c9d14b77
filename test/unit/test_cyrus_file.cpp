#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "cyrus_file.h"

using namespace subproxy::sasl;

namespace {

// The application file in a temporary file, removed with the object.
struct CyrusFile {
    explicit CyrusFile(const std::string& text) {
        const int fd = mkstemp(path);
        BOOST_REQUIRE(fd >= 0);
        close(fd);
        std::ofstream(path) << text;
    }
    ~CyrusFile() { std::remove(path); }
    CyrusOptions read() const { return readCyrusFile(path); }
    char path[32] = "/tmp/subproxy-cyrus-XXXXXX";
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cyrus_file)

BOOST_AUTO_TEST_CASE(reads_keys_values_and_lines) {
    CyrusFile f("# comment\npwcheck_method:  auxprop \r\n\nnot an option\nsasldb_path: /var/db/sasl:2\n");
    const CyrusOptions o = f.read();
    BOOST_TEST(o.size() == 2u);
    BOOST_TEST(o.at("pwcheck_method").value == "auxprop");
    BOOST_TEST(o.at("pwcheck_method").line == 2);
    BOOST_TEST(o.at("sasldb_path").value == "/var/db/sasl:2");  // only the first colon splits
    BOOST_TEST(o.at("sasldb_path").line == 5);
    BOOST_TEST(readCyrusFile("/nonexistent/subproxy.conf").empty());
}

BOOST_AUTO_TEST_CASE(sasldb_file_follows_cyrus_defaults) {
    // Nothing set: auxprop with every plugin, sasldb at Cyrus' built-in path.
    auto db = sasldbFile({});
    BOOST_REQUIRE(db.has_value());
    BOOST_TEST(db->value == "/etc/sasldb2");
    BOOST_TEST(db->line == 0);
    db = sasldbFile({{"auxprop_plugin", {"sasldb", 2}}, {"sasldb_path", {"/etc/subproxy/sasldb2", 3}}});
    BOOST_REQUIRE(db.has_value());
    BOOST_TEST(db->value == "/etc/subproxy/sasldb2");
    BOOST_TEST(db->line == 3);
    // An empty value is Cyrus' default too.
    BOOST_TEST(sasldbFile({{"sasldb_path", {"", 4}}})->value == "/etc/sasldb2");
    // Both checkers: sasldb is still asked first.
    BOOST_TEST(sasldbFile({{"pwcheck_method", {"auxprop saslauthd", 1}}}).has_value());
}

BOOST_AUTO_TEST_CASE(no_sasldb_when_another_store_checks_passwords) {
    BOOST_TEST(!sasldbFile({{"pwcheck_method", {"saslauthd", 1}}}).has_value());
    BOOST_TEST(!sasldbFile({{"auxprop_plugin", {"sql", 1}}}).has_value());
    BOOST_TEST(!sasldbFile({{"auxprop_plugin", {"ldapdb sql", 1}}}).has_value());
    BOOST_TEST(sasldbFile({{"auxprop_plugin", {"sql sasldb", 1}}}).has_value());
    BOOST_TEST(!sasldbFile({{"auxprop_plugin", {"sasldbx", 1}}}).has_value());  // words, not substrings
}

BOOST_AUTO_TEST_CASE(option_fallbacks) {
    const CyrusOptions o{{"saslauthd_path", {"/run/mux", 7}}, {"empty", {"", 8}}};
    BOOST_TEST(cyrusOption(o, "saslauthd_path", "/var/run/saslauthd/mux").value == "/run/mux");
    BOOST_TEST(cyrusOption(o, "saslauthd_path").line == 7);
    BOOST_TEST(cyrusOption(o, "empty", "x").value == "x");
    BOOST_TEST(cyrusOption(o, "missing").value.empty());
}

BOOST_AUTO_TEST_SUITE_END()
