#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "wire/smtp_reply.h"

using namespace subproxy;
using S = ReplyParser::Status;

BOOST_AUTO_TEST_SUITE(smtp_reply)

BOOST_AUTO_TEST_CASE(queue_id_from_the_end_of_data_reply) {
    const auto id = [](std::vector<std::string> lines) { return queueIdOf(Reply{250, std::move(lines)}); };
    BOOST_TEST(id({"2.0.0 Ok: queued as 557DBA7E92D"}) == "557DBA7E92D");       // Postfix, short ids
    BOOST_TEST(id({"2.0.0 Ok: queued as 4Tx1Yk2zQbz9sXd"}) == "4Tx1Yk2zQbz9sXd");  // enable_long_queue_ids
    BOOST_TEST(id({"notice", "2.0.0 Ok: queued as ABC123 (extra)"}) == "ABC123");
    BOOST_TEST(id({"2.0.0 Ok: queued as <evil>"}).empty());
    BOOST_TEST(id({"2.0.0 Ok: queued as "}).empty());
    BOOST_TEST(id({"2.0.0 Ok"}).empty());
    BOOST_TEST(id({"2.0.0 Ok: queued as " + std::string(100, 'A')}) == std::string(64, 'A'));
    // Only letters and digits: nothing the client could use to forge a field.
    BOOST_TEST(id({"2.0.0 Ok: queued as AB12 status=x"}) == "AB12");
}

BOOST_AUTO_TEST_CASE(single_line) {
    ReplyParser p;
    BOOST_TEST((p.feedLine("250 2.1.0 Ok") == S::Complete));
    Reply r = p.take();
    BOOST_TEST(r.code == 250);
    BOOST_TEST(r.klass() == 2);
    BOOST_TEST(r.positive());
    BOOST_TEST(r.lines == (std::vector<std::string>{"2.1.0 Ok"}));
    BOOST_TEST(r.wire() == "250 2.1.0 Ok\r\n");
    BOOST_TEST(r.text() == "2.1.0 Ok");
}

BOOST_AUTO_TEST_CASE(multi_line_ehlo) {
    ReplyParser p;
    BOOST_TEST((p.feedLine("250-msa.example") == S::NeedMore));
    BOOST_TEST((p.feedLine("250-PIPELINING") == S::NeedMore));
    BOOST_TEST((p.feedLine("250-SIZE 10240000") == S::NeedMore));
    BOOST_TEST((p.feedLine("250 8BITMIME") == S::Complete));
    Reply r = p.take();
    BOOST_TEST(r.lines.size() == 4u);
    BOOST_TEST(r.wire() ==
               "250-msa.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n");
    BOOST_TEST(r.text() == "msa.example; PIPELINING; SIZE 10240000; 8BITMIME");
}

BOOST_AUTO_TEST_CASE(bare_code_and_empty_text) {
    ReplyParser p;
    BOOST_TEST((p.feedLine("354") == S::Complete));
    Reply r = p.take();
    BOOST_TEST(r.code == 354);
    BOOST_TEST(r.lines == (std::vector<std::string>{""}));
    BOOST_TEST(r.wire() == "354 \r\n");
    BOOST_TEST((p.feedLine("334 ") == S::Complete));
    r = p.take();
    BOOST_TEST(r.lines == (std::vector<std::string>{""}));
    BOOST_TEST(r.wire() == "334 \r\n");  // RFC 4954 §4: "334" SP, even when empty
    BOOST_TEST((p.feedLine("250-") == S::NeedMore));
    BOOST_TEST((p.feedLine("250 x") == S::Complete));
    BOOST_TEST(p.take().wire() == "250-\r\n250 x\r\n");
}

BOOST_AUTO_TEST_CASE(classes_and_codes) {
    ReplyParser p;
    BOOST_TEST((p.feedLine("421 4.4.2 bye") == S::Complete));
    Reply r = p.take();
    BOOST_TEST(r.klass() == 4);
    BOOST_TEST(!r.positive());
    BOOST_TEST((p.feedLine("599 x") == S::Complete));
    BOOST_TEST((p.feedLine("200 x") == S::Complete));
}

BOOST_AUTO_TEST_CASE(invalid_lines) {
    for (const char* bad : {"", "25", "2500 x", "250x", "abc def", "199 x", "600 x", "099 x",
                            "25a x", " 250 x", "250\tx", "-250 x"}) {
        ReplyParser p;
        BOOST_TEST_INFO("line: " << bad);
        BOOST_TEST((p.feedLine(bad) == S::Invalid));
    }
}

BOOST_AUTO_TEST_CASE(code_change_mid_reply_is_invalid_and_parser_recovers) {
    ReplyParser p;
    BOOST_TEST((p.feedLine("250-a") == S::NeedMore));
    BOOST_TEST((p.feedLine("251 b") == S::Invalid));
    BOOST_TEST((p.feedLine("220 ready") == S::Complete));
    Reply r = p.take();
    BOOST_TEST(r.code == 220);
    BOOST_TEST(r.lines == (std::vector<std::string>{"ready"}));
}

BOOST_AUTO_TEST_CASE(back_to_back_replies) {
    ReplyParser p;
    BOOST_TEST((p.feedLine("250 2.1.0 Ok") == S::Complete));
    BOOST_TEST(p.take().text() == "2.1.0 Ok");
    BOOST_TEST((p.feedLine("550-5.1.1 no") == S::NeedMore));
    BOOST_TEST((p.feedLine("550 5.1.1 such user") == S::Complete));
    Reply r = p.take();
    BOOST_TEST(r.code == 550);
    BOOST_TEST(r.text() == "5.1.1 no; 5.1.1 such user");
}

BOOST_AUTO_TEST_CASE(too_many_lines_invalid) {
    ReplyParser p;
    S last = S::NeedMore;
    for (int i = 0; i < 5000 && last == S::NeedMore; ++i) {
        last = p.feedLine("250-x");
    }
    BOOST_TEST((last == S::Invalid));
}

BOOST_AUTO_TEST_CASE(format_reply) {
    BOOST_TEST(formatReply(530, "5.7.0 Must issue a STARTTLS command first") ==
               "530 5.7.0 Must issue a STARTTLS command first\r\n");
    BOOST_TEST(formatReply(250, "a\nb\nc") == "250-a\r\n250-b\r\n250 c\r\n");
    BOOST_TEST(formatReply(220, "x\r\ny") == "220-x\r\n220 y\r\n");
    BOOST_TEST(formatReply(354, "") == "354 \r\n");
    BOOST_TEST(formatReply(334, "") == "334 \r\n");
    Reply noLines;
    noLines.code = 334;
    BOOST_TEST(noLines.wire() == "334 \r\n");
}

BOOST_AUTO_TEST_CASE(format_reply_never_puts_a_control_byte_on_the_wire) {
    // Found by fuzzing: a bare CR inside the text went out as is.
    BOOST_TEST(formatReply(550, "a\rb\tc") == "550 a?b?c\r\n");
    BOOST_TEST(formatReply(250, "one\r\ntwo") == "250-one\r\n250 two\r\n");
}

BOOST_AUTO_TEST_SUITE_END()
