// client.cpp — see client.h.  One Worker per thread, each with its own event loop and its
// share of the connections; the SSL_CTX and the prepared command texts are shared read-only.
#include "client.h"

#include "bench_io.h"

#include <arpa/inet.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cerrno>
#include <set>
#include <thread>

namespace bench {

void Stats::merge(const Stats& o) {
    ok += o.ok;
    latencies.insert(latencies.end(), o.latencies.begin(), o.latencies.end());
    for (const auto& [k, v] : o.errors) {
        errors[k] += v;
    }
    auth235 += o.auth235;
    auth454 += o.auth454;
    authOther += o.authOther;
    connErrors += o.connErrors;
    lastAnswer = std::max(lastAnswer, o.lastAnswer);
    lastStart = std::max(lastStart, o.lastStart);
    holdFailures += o.holdFailures;
}

namespace {

// What every thread reads; the counters are the only shared writes.
struct Shared {
    Shared(const Options& o, SSL_CTX* c) : opt(o), ctx(c) {}
    const Options& opt;
    SSL_CTX* ctx;
    sockaddr_in addr{};
    std::string authLine;   // "AUTH PLAIN <base64>\r\n"
    std::string message;    // MAIL, RCPT and DATA are sent one by one; this is the text + "."
    double t0 = 0;
    std::atomic<long> started{0};
    std::atomic<long> settled{0};  // idle: logins that ended (held or failed)
    std::atomic<long> held{0};
};

enum class Step { Greeting, Ehlo, StartTls, Handshake, TlsEhlo, Auth, Held, Mail, Rcpt, Data, Dot, Quit, Closing };

const char* stepName(Step s) {
    static const char* names[] = {"greeting", "ehlo", "starttls", "handshake", "tls-ehlo", "auth", "idle",
                                  "mail", "rcpt", "data", "dot", "quit", "closing"};
    return names[static_cast<int>(s)];
}

class Worker;

class Client : public Conn {
public:
    Client(Worker& w, event_base* base, int fd);
    ~Client() override;
    void quit();  // idle mode, after the hold
    Step step() const { return step_; }

private:
    void onReadable() override;
    void onClosed(const char* why) override;
    void onTlsReady() override;
    bool onReply(int code);  // false: this was deleted
    bool next(Step step, const std::string& text);
    bool fail(const std::string& what);
    static void onTimeout(evutil_socket_t, short, void* arg);

    Worker& w_;
    Step step_ = Step::Greeting;
    double start_;
    event* timer_;
};

class Worker {
public:
    Worker(Shared& shared, long share, int concurrency)
        : s(shared), share_(share), concurrency_(concurrency), base_(event_base_new()) {
        quitEv_ = event_new(base_.get(), -1, 0, &Worker::onQuit, this);
        tickEv_ = event_new(base_.get(), -1, EV_PERSIST, &Worker::onTick, this);
    }
    ~Worker() {
        event_free(quitEv_);
        event_free(tickEv_);
    }
    void run();
    void wakeToQuit() { event_active(quitEv_, 0, 0); }  // from the main thread

    // Client callbacks.
    void held(Client* c);
    void finished(Client* c, bool ok);
    void lostWhileHeld(Client* c) { idle_.erase(c); stats.holdFailures++; }
    void authAnswer(int code);

    Shared& s;
    Stats stats;

private:
    bool mayStart() const;
    void startMore();
    bool startOne();
    static void onTick(evutil_socket_t, short, void* arg);
    static void onQuit(evutil_socket_t, short, void* arg);

    long share_;        // idle and burst: this thread's part of opt.total
    long startedHere_ = 0;
    int concurrency_;
    int opening_ = 0;   // connections not yet finished (idle: not yet held)
    bool quitting_ = false;
    bool done_ = false;
    std::set<Client*> idle_;
    EventBasePtr base_;
    event* quitEv_;
    event* tickEv_;
};

Client::Client(Worker& w, event_base* base, int fd) : Conn(base, fd), w_(w), start_(nowSeconds()) {
    timer_ = evtimer_new(base, &Client::onTimeout, this);
    timeval tv{static_cast<long>(w.s.opt.timeout), 0};
    evtimer_add(timer_, &tv);
    watchWrite();
}

Client::~Client() { event_free(timer_); }

void Client::onTimeout(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Client*>(arg);
    c->fail(std::string(stepName(c->step_)) + ": timeout");
}

bool Client::fail(const std::string& what) {
    if (step_ == Step::Held) {
        w_.lostWhileHeld(this);
    }
    if (w_.s.opt.mode == Mode::Burst && step_ <= Step::Auth) {
        w_.stats.connErrors++;
    }
    w_.stats.errors[what]++;
    w_.finished(this, false);  // deletes this
    return false;
}

void Client::onClosed(const char* why) {
    if (step_ == Step::Closing) {
        w_.finished(this, true);
        return;
    }
    fail(std::string(stepName(step_)) + ": " + why);
}

void Client::onReadable() {
    for (;;) {
        int code = takeReply(in_);
        if (code == 0) {
            return;
        }
        if (code < 0) {
            fail(std::string(stepName(step_)) + ": not SMTP");
            return;
        }
        if (!onReply(code)) {
            return;
        }
    }
}

void Client::onTlsReady() { next(Step::TlsEhlo, "EHLO loadgen.example\r\n"); }

bool Client::next(Step step, const std::string& text) {
    step_ = step;
    if (!send(text)) {
        return fail(std::string(stepName(step)) + ": write failed");
    }
    return true;
}

bool Client::onReply(int code) {
    static const int expected[] = {220, 250, 220, 0, 250, 235, 0, 250, 250, 354, 250, 221, 0};
    const Options& opt = w_.s.opt;
    if (step_ == Step::Auth && opt.mode == Mode::Burst) {
        w_.authAnswer(code);
        return next(Step::Quit, "QUIT\r\n");
    }
    if (code != expected[static_cast<int>(step_)]) {
        return fail(std::string(stepName(step_)) + " " + std::to_string(code));
    }
    switch (step_) {
    case Step::Greeting: return next(Step::Ehlo, "EHLO loadgen.example\r\n");
    case Step::Ehlo: return next(Step::StartTls, "STARTTLS\r\n");
    case Step::StartTls:
        in_.clear();
        step_ = Step::Handshake;
        startTls(w_.s.ctx, false);  // on failure onClosed has deleted this
        return false;
    case Step::TlsEhlo: return next(Step::Auth, w_.s.authLine);
    case Step::Auth:
        if (opt.mode == Mode::Idle) {
            step_ = Step::Held;
            evtimer_del(timer_);
            w_.held(this);
            return true;
        }
        return next(Step::Mail, "MAIL FROM:<alice@example.com>\r\n");
    case Step::Mail: return next(Step::Rcpt, "RCPT TO:<bob@example.com>\r\n");
    case Step::Rcpt: return next(Step::Data, "DATA\r\n");
    case Step::Data: return next(Step::Dot, w_.s.message);
    case Step::Dot: return next(Step::Quit, "QUIT\r\n");
    case Step::Quit:
        if (opt.mode == Mode::Sessions) {
            w_.stats.latencies.push_back(nowSeconds() - start_);
        }
        step_ = Step::Closing;  // the server closes first: its socket takes the TIME_WAIT
        return true;
    default: return fail(std::string(stepName(step_)) + " " + std::to_string(code));
    }
}

void Client::quit() {
    timeval tv{static_cast<long>(w_.s.opt.timeout), 0};
    evtimer_add(timer_, &tv);
    next(Step::Quit, "QUIT\r\n");
}

bool Worker::mayStart() const {
    const Options& opt = s.opt;
    switch (opt.mode) {
    case Mode::Sessions:
        if (opt.seconds > 0 && nowSeconds() - s.t0 >= opt.seconds) {
            return false;
        }
        return opt.total == 0 || s.started.load() < opt.total;
    case Mode::Idle: return startedHere_ < share_;
    case Mode::Burst: return false;  // the tick starts them
    }
    return false;
}

bool Worker::startOne() {
    if (s.opt.mode == Mode::Sessions && s.opt.total > 0 && s.started.fetch_add(1) >= s.opt.total) {
        return false;
    }
    startedHere_++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&s.addr), sizeof s.addr) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        stats.errors["connect: " + std::string(strerror(errno))]++;
        stats.connErrors++;
        if (s.opt.mode == Mode::Idle) {
            s.settled++;
        }
        return false;
    }
    opening_++;
    new Client(*this, base_.get(), fd);  // owned by the event loop until finished()
    return true;
}

// Opens connections up to the concurrency.  A failed socket()/connect() stops it (the target
// is not reachable, or the fds ran out); the run ends when nothing is left under way.
void Worker::startMore() {
    while (!quitting_ && opening_ < concurrency_ && mayStart()) {
        if (!startOne()) {
            break;
        }
    }
    bool moreToCome = (s.opt.mode == Mode::Burst && startedHere_ < share_) ||
                      (s.opt.mode == Mode::Idle && !quitting_ && startedHere_ < share_);
    if (opening_ == 0 && idle_.empty() && !moreToCome) {
        done_ = true;
        event_base_loopbreak(base_.get());
    }
}

void Worker::held(Client* c) {
    opening_--;
    idle_.insert(c);
    stats.ok++;
    s.held++;
    s.settled++;
    startMore();
}

void Worker::authAnswer(int code) {
    (code == 235 ? stats.auth235 : code == 454 ? stats.auth454 : stats.authOther)++;
    stats.lastAnswer = std::max(stats.lastAnswer, nowSeconds() - s.t0);
}

void Worker::finished(Client* c, bool ok) {
    Step step = c->step();
    delete c;
    if (step != Step::Held) {
        opening_--;
    }
    if (s.opt.mode == Mode::Sessions && ok) {
        stats.ok++;
    }
    if (s.opt.mode == Mode::Idle && !quitting_ && step != Step::Held) {
        s.settled++;  // a login that failed
    }
    startMore();
}

// Burst: opens this thread's share evenly over one second, in 10 ms steps.
void Worker::onTick(evutil_socket_t, short, void* arg) {
    auto* w = static_cast<Worker*>(arg);
    double elapsed = nowSeconds() - w->s.t0;
    long due = std::min(w->share_, static_cast<long>(static_cast<double>(w->share_) * (elapsed + 0.01)));
    while (w->startedHere_ < due) {
        w->startOne();
    }
    w->stats.lastStart = elapsed;
    if (w->startedHere_ >= w->share_) {
        event_del(w->tickEv_);
    }
}

void Worker::onQuit(evutil_socket_t, short, void* arg) {
    auto* w = static_cast<Worker*>(arg);
    w->quitting_ = true;
    std::set<Client*> idle;
    idle.swap(w->idle_);
    w->opening_ += static_cast<int>(idle.size());  // each now ends through finished()
    for (Client* c : idle) {
        c->quit();
    }
    if (w->opening_ == 0) {
        w->done_ = true;
        event_base_loopbreak(w->base_.get());
    }
}

void Worker::run() {
    if (s.opt.mode == Mode::Burst) {
        timeval tick{0, 10000};
        event_add(tickEv_, &tick);
        onTick(-1, 0, this);
    } else {
        startMore();
    }
    if (!done_) {  // a loopbreak before the loop runs would be forgotten
        event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY);
    }
}

std::string authPlain(const std::string& user, const std::string& password) {
    std::string raw = std::string(1, '\0') + user + std::string(1, '\0') + password;
    std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&b64[0]),
                            reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
    b64.resize(static_cast<size_t>(n));
    return "AUTH PLAIN " + b64 + "\r\n";
}

// A message of about BYTES bytes (headers, 76-character lines), then the end-of-data dot.
std::string messageText(int bytes) {
    std::string m = "From: <alice@example.com>\r\nTo: <bob@example.com>\r\nSubject: bench\r\n\r\n";
    std::string line(76, 'x');
    while (static_cast<int>(m.size()) + 78 <= bytes) {
        m += line + "\r\n";
    }
    return m + ".\r\n";
}

}  // namespace

Stats runClients(const Options& opt, void (*ready)(long held, long failed, double seconds)) {
    evthread_use_pthreads();  // the main thread wakes the workers for QUIT (idle mode)
    SslCtxPtr ctx = clientContext();
    Shared shared(opt, ctx.get());
    shared.addr.sin_family = AF_INET;
    shared.addr.sin_port = htons(static_cast<uint16_t>(opt.port));
    shared.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    shared.authLine = authPlain(opt.user, opt.password);
    shared.message = messageText(opt.messageBytes);
    shared.t0 = nowSeconds();

    std::vector<std::unique_ptr<Worker>> workers;
    for (int i = 0; i < opt.threads; ++i) {
        long share = opt.total / opt.threads + (i < opt.total % opt.threads ? 1 : 0);
        int conc = opt.concurrency / opt.threads + (i < opt.concurrency % opt.threads ? 1 : 0);
        workers.push_back(std::make_unique<Worker>(shared, share, std::max(conc, 1)));
    }
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&w] { w->run(); });
    }
    if (opt.mode == Mode::Idle) {
        while (shared.settled.load() < opt.total) {
            usleep(20000);
        }
        ready(shared.held.load(), opt.total - shared.held.load(), nowSeconds() - shared.t0);
        usleep(static_cast<useconds_t>(opt.hold * 1e6));
        for (auto& w : workers) {
            w->wakeToQuit();
        }
    }
    Stats all;
    for (size_t i = 0; i < threads.size(); ++i) {
        threads[i].join();
        all.merge(workers[i]->stats);
    }
    return all;
}

}  // namespace bench
