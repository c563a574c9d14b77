// The status endpoint's HTTP parsing and token check (http_request.h): no I/O.
#include <boost/test/unit_test.hpp>

#include "wire/http_request.h"

using namespace subproxy;

BOOST_AUTO_TEST_SUITE(http_request)

BOOST_AUTO_TEST_CASE(request_head_parsed_when_complete) {
    const std::string req = "GET /migration?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization:  Bearer abc \r\n\r\n";
    for (std::size_t cut = 0; cut < req.size(); ++cut) {
        BOOST_TEST((parseHttpRequest(req.substr(0, cut)).status == HttpParse::Status::NeedMore));
    }
    const HttpParse p = parseHttpRequest(req);
    BOOST_TEST((p.status == HttpParse::Status::Done));
    BOOST_TEST(p.request.method == "GET");
    BOOST_TEST(p.request.path == "/migration");
    BOOST_TEST(p.request.authorization == "Bearer abc");
}

BOOST_AUTO_TEST_CASE(bare_lf_and_bad_requests) {
    BOOST_TEST((parseHttpRequest("GET / HTTP/1.0\n\n").status == HttpParse::Status::Done));
    BOOST_TEST((parseHttpRequest("GET /\r\n\r\n").status == HttpParse::Status::Bad));
    BOOST_TEST((parseHttpRequest("GET x HTTP/1.0\r\n\r\n").status == HttpParse::Status::Bad));
    BOOST_TEST((parseHttpRequest("EHLO x\r\n\r\n").status == HttpParse::Status::Bad));
}

BOOST_AUTO_TEST_CASE(token_as_bearer_or_basic_password) {
    const std::string token = "0123456789abcdef";
    BOOST_TEST(httpAuthorized("Bearer 0123456789abcdef", token));
    BOOST_TEST(httpAuthorized("bearer 0123456789abcdef", token));
    BOOST_TEST(!httpAuthorized("Bearer 0123456789abcdeg", token));
    BOOST_TEST(!httpAuthorized("Bearer 0123456789abcde", token));
    BOOST_TEST(!httpAuthorized("Bearer 0123456789abcdef0", token));
    BOOST_TEST(httpAuthorized("Basic b3BzOjAxMjM0NTY3ODlhYmNkZWY=", token));  // ops:0123456789abcdef
    BOOST_TEST(!httpAuthorized("Basic b3BzOndyb25n", token));                 // ops:wrong
    BOOST_TEST(!httpAuthorized("Basic !!!", token));
    BOOST_TEST(!httpAuthorized("", token));
    BOOST_TEST(!httpAuthorized("Bearer ", ""));  // no token configured: nothing unlocks
}

BOOST_AUTO_TEST_CASE(response_closes_and_head_has_no_body) {
    const std::string r = httpResponse(200, "text/plain", "hello");
    BOOST_TEST(r.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    BOOST_TEST(r.find("Content-Length: 5\r\n") != std::string::npos);
    BOOST_TEST(r.find("Connection: close\r\n") != std::string::npos);
    BOOST_TEST(r.substr(r.size() - 9) == "\r\n\r\nhello");
    const std::string h = httpResponse(200, "text/plain", "hello", false);
    BOOST_TEST(h.substr(h.size() - 4) == "\r\n\r\n");
    BOOST_TEST(httpResponse(401, "text/plain", "").find("WWW-Authenticate: Basic") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
