#include <boost/test/unit_test.hpp>

#include <random>
#include <string>
#include <vector>

#include "wire/line_reader.h"

using namespace subproxy;
using Status = LineResult::Status;

namespace {

// Every result until NeedMore.
std::vector<LineResult> drain(LineReader& reader) {
    std::vector<LineResult> out;
    for (;;) {
        LineResult r = reader.next();
        if (r.status == Status::NeedMore) {
            return out;
        }
        out.push_back(r);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(line_reader)

BOOST_AUTO_TEST_CASE(single_and_pipelined_lines) {
    LineReader reader(100);
    BOOST_TEST(static_cast<int>(reader.next().status) == static_cast<int>(Status::NeedMore));
    reader.append("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDA");
    auto lines = drain(reader);
    BOOST_REQUIRE(lines.size() == 3u);
    BOOST_TEST(lines[0].line == "EHLO x");
    BOOST_TEST(lines[1].line == "MAIL FROM:<a@b>");
    BOOST_TEST(lines[2].line == "RCPT TO:<c@d>");
    BOOST_TEST(reader.buffered() == 2u);
    reader.append("TA\r\n");
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line == "DATA");
    BOOST_TEST(reader.buffered() == 0u);
}

BOOST_AUTO_TEST_CASE(empty_line) {
    LineReader reader(10);
    reader.append("\r\n");
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line.empty());
}

BOOST_AUTO_TEST_CASE(crlf_split_at_every_byte) {
    const std::string input = "NOOP\r\nQUIT\r\n";
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        LineReader reader(100);
        reader.append(input.substr(0, cut));
        auto lines = drain(reader);
        reader.append(input.substr(cut));
        for (auto& l : drain(reader)) {
            lines.push_back(l);
        }
        BOOST_REQUIRE(lines.size() == 2u);
        BOOST_TEST((lines[0].status == Status::Line));
        BOOST_TEST(lines[0].line == "NOOP");
        BOOST_TEST(lines[1].line == "QUIT");
    }
}

BOOST_AUTO_TEST_CASE(byte_at_a_time) {
    LineReader reader(100);
    std::vector<std::string> got;
    for (char c : std::string("AUTH PLAIN\r\n\r\nx\r\n")) {
        reader.append(std::string(1, c));
        for (auto& l : drain(reader)) {
            got.push_back(l.line);
        }
    }
    BOOST_TEST(got == (std::vector<std::string>{"AUTH PLAIN", "", "x"}));
}

BOOST_AUTO_TEST_CASE(bare_lf_is_not_a_line_end) {
    LineReader reader(100);
    reader.append("DATA\nRSET\r\nNOOP\r\n");
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::BadEnding));
    r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line == "NOOP");
    BOOST_TEST((reader.next().status == Status::NeedMore));
}

BOOST_AUTO_TEST_CASE(bare_cr_nul_and_lfcr) {
    for (const std::string& bad : {std::string("A\rB\r\n"), std::string("A\0B\r\n", 5),
                                  std::string("\n\r\n"), std::string("\r\r\n"),
                                  std::string("A\n\rB\r\n"), std::string("\0\r\n", 3)}) {
        LineReader reader(100);
        reader.append(bad + "OK\r\n");
        LineResult r = reader.next();
        BOOST_TEST((r.status == Status::BadEnding));
        r = reader.next();
        BOOST_TEST((r.status == Status::Line));
        BOOST_TEST(r.line == "OK");
    }
}

BOOST_AUTO_TEST_CASE(bare_cr_split_before_following_byte) {
    LineReader reader(100);
    reader.append("A\r");
    BOOST_TEST((reader.next().status == Status::NeedMore));
    reader.append("B\r");
    BOOST_TEST((reader.next().status == Status::NeedMore));
    reader.append("\n");
    BOOST_TEST((reader.next().status == Status::BadEnding));
}

BOOST_AUTO_TEST_CASE(limit_exact_and_exceeded_in_one_buffer) {
    LineReader reader(4);
    reader.append("ABCD\r\nABCDE\r\nOK\r\n");
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line == "ABCD");
    r = reader.next();
    BOOST_TEST((r.status == Status::TooLong));
    BOOST_TEST(r.line.empty());
    r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line == "OK");
}

BOOST_AUTO_TEST_CASE(too_long_streamed_discards_then_reports_once) {
    LineReader reader(10);
    reader.append(std::string(50, 'x'));
    BOOST_TEST((reader.next().status == Status::NeedMore));
    BOOST_TEST(reader.buffered() == 0u);  // bounded memory: bytes dropped
    reader.append(std::string(50, 'y') + "\r");
    BOOST_TEST((reader.next().status == Status::NeedMore));
    BOOST_TEST(reader.buffered() <= 1u);
    reader.append("\nQUIT\r\n");
    BOOST_TEST((reader.next().status == Status::TooLong));
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line == "QUIT");
}

BOOST_AUTO_TEST_CASE(limit_with_split_crlf_at_boundary) {
    LineReader reader(4);
    reader.append("ABCD\r");  // 5 bytes, but the CR may start CRLF
    BOOST_TEST((reader.next().status == Status::NeedMore));
    reader.append("\n");
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::Line));
    BOOST_TEST(r.line == "ABCD");
}

BOOST_AUTO_TEST_CASE(too_long_line_with_bare_lf_is_too_long) {
    LineReader reader(4);
    reader.append("AB\nCDEFG\r\nX\r\n");
    BOOST_TEST((reader.next().status == Status::TooLong));
    BOOST_TEST(reader.next().line == "X");
}

BOOST_AUTO_TEST_CASE(set_limit_for_auth_lines) {
    LineReader reader(4);
    reader.setLimit(8);
    reader.append("ABCDEFGH\r\n");
    BOOST_TEST(reader.next().line == "ABCDEFGH");
}

BOOST_AUTO_TEST_CASE(take_buffered_and_clear) {
    LineReader reader(100);
    reader.append("STARTTLS\r\nEHLO evil\r\nMAIL");
    BOOST_TEST(reader.next().line == "STARTTLS");
    BOOST_TEST(reader.buffered() == 15u);
    BOOST_TEST(reader.takeBuffered() == "EHLO evil\r\nMAIL");
    BOOST_TEST(reader.buffered() == 0u);
    BOOST_TEST((reader.next().status == Status::NeedMore));
    reader.append("A\nB");
    BOOST_TEST((reader.next().status == Status::NeedMore));
    reader.clear();
    reader.append("C\r\n");
    LineResult r = reader.next();
    BOOST_TEST((r.status == Status::Line));  // the bad byte before clear() is forgotten
    BOOST_TEST(r.line == "C");
}

BOOST_AUTO_TEST_CASE(fixed_seed_garbage_stays_in_sync) {
    std::mt19937 rng(12345);
    const char alphabet[] = {'a', 'b', ' ', '\r', '\n', '\0', '.', 'Z'};
    for (int round = 0; round < 300; ++round) {
        std::string garbage;
        const std::size_t len = rng() % 400;
        for (std::size_t i = 0; i < len; ++i) {
            garbage.push_back(alphabet[rng() % sizeof alphabet]);
        }
        const std::string input = garbage + "\r\nSYNC\r\n";
        LineReader reader(16);
        std::vector<LineResult> results;
        std::size_t pos = 0;
        while (pos < input.size()) {
            const std::size_t chunk = 1 + rng() % 30;
            reader.append(input.substr(pos, chunk));
            pos += chunk;
            for (auto& r : drain(reader)) {
                BOOST_REQUIRE(r.line.size() <= 16u);
                results.push_back(r);
            }
            BOOST_REQUIRE(reader.buffered() <= 16u + 31u);
        }
        BOOST_REQUIRE(!results.empty());
        BOOST_TEST((results.back().status == Status::Line));
        BOOST_TEST(results.back().line == "SYNC");
        BOOST_TEST(reader.buffered() == 0u);
    }
}

BOOST_AUTO_TEST_SUITE_END()
