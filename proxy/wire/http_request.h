// The little HTTP/1.x the status endpoint needs, without I/O: parse a request head (request
// line and headers, ended by an empty line) and format a response that closes the connection.
// A scraper or curl sends a small GET; anything else gets a clear 4xx.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace subproxy {

struct HttpRequest {
    std::string method;         // "GET", "HEAD", …
    std::string path;           // without the query string
    std::string authorization;  // the Authorization header's value, or ""
};

struct HttpParse {
    enum class Status { NeedMore, Done, Bad };
    Status status = Status::NeedMore;
    HttpRequest request;
};

// `input` holds what the client sent so far.
HttpParse parseHttpRequest(std::string_view input);

// "HTTP/1.0 <code> <reason>" with Content-Type, Content-Length, Cache-Control: no-store and
// Connection: close; the body is left out for HEAD (`withBody` false).
std::string httpResponse(int code, const std::string& type, const std::string& body, bool withBody = true);

// True when `authorization` carries `token`: "Bearer <token>", or Basic with <token> as the
// password (any user name), so both Prometheus' bearer_token and curl -u work.  Constant time
// in the token's content.
bool httpAuthorized(const std::string& authorization, const std::string& token);

}  // namespace subproxy
