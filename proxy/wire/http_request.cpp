#include "wire/http_request.h"

#include <algorithm>
#include <cctype>

#include "wire/base64.h"

namespace subproxy {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

bool sameSecret(std::string_view a, std::string_view b) {
    // No early exit on the first difference: the time says nothing about the token's content.
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    }
    return diff == 0;
}

const char* reason(int code) {
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

}  // namespace

HttpParse parseHttpRequest(std::string_view input) {
    HttpParse result;
    // Bare LF line ends are accepted (as by most servers); the head ends at an empty line.
    const std::size_t end = std::min(input.find("\r\n\r\n"), input.find("\n\n"));
    if (end == std::string_view::npos) {
        return result;
    }
    std::string_view head = input.substr(0, end);
    std::size_t lineEnd = head.find('\n');
    std::string_view requestLine = trim(head.substr(0, lineEnd));
    const std::size_t sp1 = requestLine.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : requestLine.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || requestLine.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
        result.status = HttpParse::Status::Bad;
        return result;
    }
    result.request.method = std::string(requestLine.substr(0, sp1));
    std::string_view target = requestLine.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target.empty() || target.front() != '/') {
        result.status = HttpParse::Status::Bad;
        return result;
    }
    result.request.path = std::string(target.substr(0, target.find('?')));
    while (lineEnd != std::string_view::npos) {
        const std::size_t start = lineEnd + 1;
        lineEnd = head.find('\n', start);
        const std::string_view line = trim(head.substr(start, lineEnd == std::string_view::npos ? lineEnd : lineEnd - start));
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && lower(line.substr(0, colon)) == "authorization") {
            result.request.authorization = std::string(trim(line.substr(colon + 1)));
        }
    }
    result.status = HttpParse::Status::Done;
    return result;
}

std::string httpResponse(int code, const std::string& type, const std::string& body, bool withBody) {
    std::string out = "HTTP/1.0 " + std::to_string(code) + " " + reason(code) + "\r\nContent-Type: " + type +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    if (code == 401) {
        out += "WWW-Authenticate: Basic realm=\"subproxy status\"\r\n";
    }
    out += "\r\n";
    if (withBody) {
        out += body;
    }
    return out;
}

bool httpAuthorized(const std::string& authorization, const std::string& token) {
    if (token.empty()) {
        return false;
    }
    const std::size_t sp = authorization.find(' ');
    if (sp == std::string::npos) {
        return false;
    }
    const std::string scheme = lower(std::string_view(authorization).substr(0, sp));
    const std::string_view credentials = trim(std::string_view(authorization).substr(sp + 1));
    if (scheme == "bearer") {
        return sameSecret(credentials, token);
    }
    if (scheme == "basic") {
        const auto decoded = decodeBase64(credentials);
        if (!decoded) {
            return false;
        }
        const std::size_t colon = decoded->find(':');
        return colon != std::string::npos && sameSecret(std::string_view(*decoded).substr(colon + 1), token);
    }
    return false;
}

}  // namespace subproxy
