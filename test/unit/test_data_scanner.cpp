#include <boost/test/unit_test.hpp>

#include <random>
#include <string>

#include "wire/data_scanner.h"

using namespace subproxy;

namespace {

struct Run {
    std::string out;
    std::size_t consumed = 0;
    bool done = false;
    bool bare = false;
    bool nul = false;
    bool big = false;
    std::uint64_t size = 0;
};

// Feeds `in` in one go.
Run scan(const std::string& in, BareNewline policy = BareNewline::Reject,
         std::uint64_t max = 0) {
    DataScanner s(policy, max);
    Run r;
    auto res = s.feed(in, r.out);
    r.consumed = res.consumed;
    r.done = res.done;
    r.bare = s.sawBareNewline();
    r.nul = s.sawNul();
    r.big = s.tooBig();
    r.size = s.size();
    return r;
}

// Feeds `in` split at `cut`, then the rest; consumed is the total.
Run scanSplit(const std::string& in, std::size_t cut, BareNewline policy = BareNewline::Reject) {
    DataScanner s(policy, 0);
    Run r;
    auto first = s.feed(std::string_view(in).substr(0, cut), r.out);
    r.consumed = first.consumed;
    r.done = first.done;
    if (!first.done) {
        auto second = s.feed(std::string_view(in).substr(cut), r.out);
        r.consumed += second.consumed;
        r.done = second.done;
    }
    r.bare = s.sawBareNewline();
    r.size = s.size();
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(data_scanner)

BOOST_AUTO_TEST_CASE(simple_message) {
    const std::string body = "Subject: hi\r\n\r\nhello\r\n";
    Run r = scan(body + ".\r\nQUIT\r\n");
    BOOST_TEST(r.done);
    BOOST_TEST(r.out == body);
    BOOST_TEST(r.consumed == body.size() + 3);
    BOOST_TEST(r.size == body.size());
    BOOST_TEST(!r.bare);
}

BOOST_AUTO_TEST_CASE(empty_message) {
    Run r = scan(".\r\nMAIL FROM:<>\r\n");
    BOOST_TEST(r.done);
    BOOST_TEST(r.out == "");
    BOOST_TEST(r.consumed == 3u);
    BOOST_TEST(r.size == 0u);
}

BOOST_AUTO_TEST_CASE(dot_stuffing_round_trips) {
    const std::string body = "..\r\n..leading\r\n...three\r\nmid.dle.\r\n. \r\n";
    Run r = scan(body + ".\r\n");
    BOOST_TEST(r.done);
    BOOST_TEST(r.out == "..\r\n..leading\r\n...three\r\nmid.dle.\r\n \r\n");  // ". " is " "
    // Unstuffed: ".\r\n" ".leading\r\n" "..three\r\n" "mid.dle.\r\n" " \r\n"
    BOOST_TEST(r.size == 3u + 10u + 9u + 10u + 3u);
}

BOOST_AUTO_TEST_CASE(unstuffed_single_dot_prefix_is_dropped) {
    Run r = scan(".x\r\n.\r\n");
    BOOST_TEST(r.done);
    BOOST_TEST(r.out == "x\r\n");
    BOOST_TEST(r.size == 3u);
}

BOOST_AUTO_TEST_CASE(terminator_split_at_every_position) {
    const std::string input = "a\r\n..b\r\n\r\n.\r\nNEXT";
    const std::size_t end = input.size() - 4;
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        BOOST_TEST_INFO("cut " << cut);
        Run r = scanSplit(input, cut);
        BOOST_TEST(r.done);
        BOOST_TEST(r.consumed == end);
        BOOST_TEST(r.out == "a\r\n..b\r\n\r\n");
    }
}

BOOST_AUTO_TEST_CASE(byte_at_a_time) {
    const std::string input = ".\r\n";
    DataScanner s(BareNewline::Reject, 0);
    std::string out;
    BOOST_TEST(!s.feed("..", out).done);
    BOOST_TEST(!s.feed("\r", out).done);
    BOOST_TEST(!s.feed("\n", out).done);
    BOOST_TEST(!s.feed(".", out).done);
    BOOST_TEST(!s.feed("\r", out).done);
    auto r = s.feed("\nX", out);
    BOOST_TEST(r.done);
    BOOST_TEST(r.consumed == 1u);
    BOOST_TEST(out == "..\r\n");
    // After done nothing more is consumed.
    auto again = s.feed("MORE", out);
    BOOST_TEST(again.done);
    BOOST_TEST(again.consumed == 0u);
    BOOST_TEST(out == "..\r\n");
}

BOOST_AUTO_TEST_CASE(smuggling_sequences_do_not_end_data_reject) {
    for (const char* seq : {"\n.\n", "\r.\r", "\n.\r\n", "\r.\n", "\n.\r", "\r\n.\n", "\r.\r\n",
                            "\r\n.\r", "\r\n.\rX", "\n\n", "\r\r"}) {
        const std::string input = std::string("a") + seq + "MAIL FROM:<evil>\r\n.\r\nQUIT\r\n";
        Run r = scan(input);
        BOOST_TEST_INFO("sequence index");
        BOOST_TEST(r.done);
        BOOST_TEST(r.bare);
        BOOST_TEST(r.consumed == input.size() - 6);  // only the real CRLF.CRLF ends it
        BOOST_TEST(r.out.find("MAIL") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(nul_before_dot_line) {
    const std::string input = std::string("a\r\n\0.\r\nb\r\n.\r\n", 13);
    Run r = scan(input);
    BOOST_TEST(r.done);
    BOOST_TEST(r.nul);
    BOOST_TEST(!r.bare);
    BOOST_TEST(r.consumed == input.size());
    BOOST_TEST(r.out == "a\r\n");  // output stops at the NUL
}

BOOST_AUTO_TEST_CASE(crcrlf_then_dot_is_real_terminator) {
    // "\r\r\n" is a bare CR followed by a real CRLF: the literal CRLF.CRLF still ends data.
    const std::string input = "a\r\r\n.\r\nX";
    Run r = scan(input);
    BOOST_TEST(r.done);
    BOOST_TEST(r.bare);
    BOOST_TEST(r.consumed == input.size() - 1);
}

BOOST_AUTO_TEST_CASE(normalize_policy) {
    Run r = scan("a\nb\rc\r\r\nd\r\n.\r\n", BareNewline::Normalize);
    BOOST_TEST(r.done);
    BOOST_TEST(!r.bare);
    BOOST_TEST(r.out == "a\r\nb\r\nc\r\n\r\nd\r\n");
    BOOST_TEST(r.size == r.out.size());
}

BOOST_AUTO_TEST_CASE(normalize_never_forms_terminator) {
    const std::string tail = "after\r\n.\r\n";
    const std::pair<std::string, std::string> cases[] = {
        {"x\n.\n", "x\r\n..\r\n"},        {"x\n.\r\n", "x\r\n..\r\n"},
        {"x\r.\r", "x\r\n..\r\n"},        {"x\r.\r\n", "x\r\n..\r\n"},
        {"x\r\n.\n", "x\r\n..\r\n"},      {"x\r\n.\r", "x\r\n..\r\n"},
        {"x\n..y\r\n", "x\r\n..y\r\n"},   {"x\n.y\r\n", "x\r\ny\r\n"},
    };
    for (const auto& [seq, expected] : cases) {
        Run r = scan(seq + tail, BareNewline::Normalize);
        BOOST_TEST(r.done);
        BOOST_TEST(r.consumed == seq.size() + tail.size());
        BOOST_TEST(r.out == expected + "after\r\n");
        BOOST_TEST(!r.bare);
    }
}

BOOST_AUTO_TEST_CASE(normalize_nul_still_stops) {
    Run r = scan(std::string("a\0b\r\n.\r\n", 8), BareNewline::Normalize);
    BOOST_TEST(r.done);
    BOOST_TEST(r.nul);
    BOOST_TEST(r.out == "a");
}

BOOST_AUTO_TEST_CASE(size_limit) {
    Run r = scan("12345678\r\n.\r\n", BareNewline::Reject, 10);
    BOOST_TEST(r.done);
    BOOST_TEST(!r.big);  // exactly 10 bytes
    BOOST_TEST(r.size == 10u);
    r = scan("123456789\r\nmore\r\n.\r\nX", BareNewline::Reject, 10);
    BOOST_TEST(r.done);
    BOOST_TEST(r.big);
    BOOST_TEST(r.consumed == 20u);
    BOOST_TEST(r.out.size() <= 10u);
    BOOST_TEST(r.size == 17u);
}

BOOST_AUTO_TEST_CASE(size_counts_unstuffed_bytes) {
    Run r = scan("..\r\n.\r\n", BareNewline::Reject, 3);
    BOOST_TEST(!r.big);
    BOOST_TEST(r.size == 3u);
    BOOST_TEST(r.out == "..\r\n");
}

BOOST_AUTO_TEST_CASE(fixed_seed_garbage_stays_in_sync) {
    std::mt19937 rng(777);
    const char alphabet[] = {'a', '.', '\r', '\n', '\0', ' ', 'M'};
    for (int round = 0; round < 500; ++round) {
        std::string garbage;
        const std::size_t len = rng() % 300;
        for (std::size_t i = 0; i < len; ++i) {
            garbage.push_back(alphabet[rng() % sizeof alphabet]);
        }
        // Remove any real terminator from the garbage so we know where the end is.
        std::size_t at;
        while ((at = garbage.find("\r\n.\r\n")) != std::string::npos) {
            garbage[at + 2] = 'x';
        }
        while (garbage.compare(0, 3, ".\r\n") == 0) {
            garbage[0] = 'x';
        }
        // Ends with CRLF so the suffix cannot join with a garbage tail.
        const std::string input = "z" + garbage + "\r\n.\r\nQUIT\r\n";
        // Make sure a "\r\n.\r\n" did not form at the junction.
        const std::size_t expectedEnd = input.find("\r\n.\r\n") + 5;
        const BareNewline policy = round % 2 ? BareNewline::Normalize : BareNewline::Reject;
        DataScanner s(policy, round % 3 == 0 ? 50 : 0);
        std::string out;
        std::size_t pos = 0;
        bool done = false;
        while (pos < input.size() && !done) {
            const std::size_t chunk = 1 + rng() % 20;
            auto res = s.feed(std::string_view(input).substr(pos, chunk), out);
            BOOST_REQUIRE(res.consumed <= chunk);
            pos += res.consumed;
            done = res.done;
        }
        BOOST_REQUIRE(done);
        BOOST_TEST(pos == expectedEnd);
        if (s.clean()) {
            // Canonical output: no bare CR/LF, no NUL, ends with CRLF when not empty.
            for (std::size_t i = 0; i < out.size(); ++i) {
                BOOST_REQUIRE(out[i] != '\0');
                if (out[i] == '\r') {
                    BOOST_REQUIRE(i + 1 < out.size());
                    BOOST_REQUIRE(out[i + 1] == '\n');
                }
                if (out[i] == '\n') {
                    BOOST_REQUIRE(i > 0);
                    BOOST_REQUIRE(out[i - 1] == '\r');
                }
            }
            BOOST_TEST(out.find("\r\n.\r\n") == std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
