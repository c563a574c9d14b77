// sink.cpp — `loadgen sink`: the upstream MSA of the benchmark.  A plaintext SMTP server on
// loopback that accepts everything at once: EHLO (PIPELINING, SIZE, 8BITMIME, STARTTLS, XCLIENT,
// AUTH PLAIN), XCLIENT answered 220 as Postfix does, AUTH (any credentials: 235), MAIL/RCPT 250,
// DATA 354 then 250, QUIT 221.  STARTTLS uses the test certificate, so a proxy can keep its MSA
// leg in TLS, and the load generator can run the proxies' session directly against the sink
// (the reference for the proxies' added latency).
#include "bench_io.h"
#include "sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <strings.h>
#include <thread>
#include <vector>

namespace bench {
namespace {

const char kGreeting[] = "220 sink.test ESMTP bench sink\r\n";
const char kEhloPlain[] =
    "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
    "250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n250 AUTH PLAIN LOGIN\r\n";
const char kEhloTls[] =
    "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
    "250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n250 AUTH PLAIN LOGIN\r\n";

bool verbIs(const std::string& line, const char* verb) {
    size_t n = std::strlen(verb);
    return line.size() >= n && strncasecmp(line.c_str(), verb, n) == 0 &&
           (line.size() == n || line[n] == ' ');
}

class SinkConn : public Conn {
public:
    SinkConn(event_base* base, int fd, SSL_CTX* ctx) : Conn(base, fd), ctx_(ctx) {
        if (!send(kGreeting, sizeof kGreeting - 1)) {
            failed_ = true;  // the first read event reports the closed socket
        }
    }

private:
    void onClosed(const char*) override { delete this; }

    void onReadable() override {
        std::string line;
        while (takeLine(in_, line)) {
            if (!answer(line)) {
                delete this;
                return;
            }
            if (startedTls_) {
                startedTls_ = false;
                in_.clear();  // RFC 3207: nothing sent before the handshake counts
                startTls(ctx_, true);
                return;
            }
        }
        if (failed_) {
            delete this;
        }
    }

    // False: close the connection (QUIT, or the socket failed).
    bool answer(const std::string& line) {
        if (inData_) {
            if (line == ".") {
                inData_ = false;
                return reply("250 2.0.0 Ok: queued\r\n");
            }
            return true;
        }
        if (verbIs(line, "EHLO") || verbIs(line, "HELO")) {
            return tls() ? reply(kEhloTls) : reply(kEhloPlain);
        }
        if (verbIs(line, "STARTTLS") && !tls()) {
            startedTls_ = true;
            return reply("220 2.0.0 Ready to start TLS\r\n");
        }
        if (verbIs(line, "XCLIENT")) {
            return reply("220 sink.test ESMTP bench sink\r\n");
        }
        if (verbIs(line, "AUTH")) {
            return reply("235 2.7.0 Authentication successful\r\n");
        }
        if (verbIs(line, "DATA")) {
            inData_ = true;
            return reply("354 End data with <CR><LF>.<CR><LF>\r\n");
        }
        if (verbIs(line, "QUIT")) {
            reply("221 2.0.0 Bye\r\n");
            return false;
        }
        if (verbIs(line, "MAIL") || verbIs(line, "RCPT") || verbIs(line, "RSET") || verbIs(line, "NOOP")) {
            return reply("250 2.0.0 Ok\r\n");
        }
        return reply("502 5.5.2 Command not implemented\r\n");
    }

    bool reply(const char* text) { return send(text, std::strlen(text)); }

    SSL_CTX* ctx_;
    bool inData_ = false;
    bool startedTls_ = false;
    bool failed_ = false;
};

struct Listener {
    event_base* base;
    SSL_CTX* ctx;
};

void onAccept(evutil_socket_t lfd, short, void* arg) {
    auto* l = static_cast<Listener*>(arg);
    for (;;) {
        int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;  // EAGAIN, or EMFILE until a connection closes
        }
        new SinkConn(l->base, fd, l->ctx);  // deletes itself when the connection ends
    }
}

int listenOn(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);  // one listener per thread
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 4096) != 0) {
        std::perror("loadgen sink: bind/listen");
        std::exit(2);
    }
    return fd;
}

void serve(int port, SSL_CTX* ctx) {
    EventBasePtr base(event_base_new());
    int lfd = listenOn(port);
    Listener l{base.get(), ctx};
    event* ev = event_new(base.get(), lfd, EV_READ | EV_PERSIST, onAccept, &l);
    event_add(ev, nullptr);
    event_base_dispatch(base.get());  // until the driver kills the process
    event_free(ev);
    close(lfd);
}

}  // namespace

int sinkMain(int port, int threads, const std::string& cert, const std::string& key) {
    raiseFdLimit();
    SslCtxPtr ctx = serverContext(cert, key);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) {
        pool.emplace_back(serve, port, ctx.get());
    }
    serve(port, ctx.get());
    for (auto& t : pool) {
        t.join();
    }
    return 0;
}

}  // namespace bench
