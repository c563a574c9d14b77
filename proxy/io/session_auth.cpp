// Session, the password half: SASL steps on the auth worker threads, their deadline
// (auth.timeout) and the guard's penalty that holds a 535 back.
#include <atomic>

#include "wire/identity.h"
#include "wire/sasl_payload.h"
#include "sasl_server.h"
#include "io/server.h"
#include "io/session.h"

namespace subproxy {

namespace {

std::string saslAddress(const std::string& address, int port) {
    return address + ";" + std::to_string(port);  // Cyrus wants "a.b.c.d;port", no brackets
}

}  // namespace

struct Session::AuthJob {
    std::unique_ptr<sasl::Attempt> attempt;  // touched by one thread at a time
    // Set on the loop when the session stops waiting (timeout, cancel, close): a job still
    // queued then is skipped instead of spending the backend's time on nobody.
    std::atomic<bool> abandoned{false};
};

void Session::authStart(const std::string& mechanism, const std::optional<std::string>& initial) {
    abandonAuthJob();
    auth_ = std::make_shared<AuthJob>();  // a fresh sasl_conn_t for every AUTH command
    ++authGeneration_;
    authMechanism_ = mechanism;
    loginName_.reset();
    pendingCredential_.reset();
    if (mechanism == "PLAIN" && initial) {
        // The engine has checked the message; an authzid is either empty or the login itself.
        if (const auto creds = parsePlain(*initial); creds && answerFromCache(creds->authcid, creds->password)) {
            return;
        }
    }
    runAuth([=](sasl::Attempt& attempt) { return attempt.start(mechanism, initial); });
}

void Session::authStep(const std::string& response) {
    if (authMechanism_ == "PLAIN" && !pendingCredential_) {
        if (const auto creds = parsePlain(response); creds && answerFromCache(creds->authcid, creds->password)) {
            return;
        }
    } else if (authMechanism_ == "LOGIN" && !loginName_) {
        loginName_ = response;
    } else if (authMechanism_ == "LOGIN" && !pendingCredential_ && answerFromCache(*loginName_, response)) {
        return;
    }
    runAuth([response](sasl::Attempt& attempt) { return attempt.step(response); });
}

namespace {

// A cached verdict reaches the session from the loop, like the workers' (never re-entrantly
// from inside the engine's AUTH command).
struct CachedAnswer {
    Server* server;
    std::uint64_t id;
    std::uint64_t generation;
    AuthResult result;
};

}  // namespace

bool Session::answerFromCache(const std::string& login, const std::string& password) {
    CredentialStore& store = server_.credentials();
    if (!store.enabled()) {
        return false;
    }
    const std::string digest = store.digest(login, password);
    const std::optional<std::string> backendUser = store.find(login, digest);
    if (!backendUser) {
        pendingCredential_.emplace(login, digest);  // cached when the backend says yes
        return false;
    }
    abandonAuthJob();  // LOGIN: the attempt that asked for the password is not needed
    ++server_.metrics().authCacheHits;
    authAsked_ = std::chrono::steady_clock::now();
    auto* answer = new CachedAnswer{&server_, id_, authGeneration_,
                                    AuthResult{AuthResult::Status::Done, {}, *backendUser, "auth cache"}};
    const timeval now{0, 0};
    if (event_base_once(server_.base(), -1, EV_TIMEOUT, &Session::cachedAnswerCb, answer, &now) != 0) {
        delete answer;
        pendingCredential_.reset();
        return false;
    }
    return true;
}

void Session::cachedAnswerCb(evutil_socket_t, short, void* arg) {
    std::unique_ptr<CachedAnswer> answer(static_cast<CachedAnswer*>(arg));
    if (Session* session = answer->server->findSession(answer->id)) {
        session->authFinished(answer->generation, answer->result);
    }
}

void Session::runAuth(std::function<AuthResult(sasl::Attempt&)> step) {
    // One deadline for the customer and the queue: the timer answers 454 at auth.timeout, and
    // a job still queued by then is dropped by the workers without running.
    authAsked_ = std::chrono::steady_clock::now();
    startTimer(authTimer_, server_.base(), &Session::authTimeoutCb, this, timeval{runtime_->config.auth.timeout, 0});
    const auto deadline = authAsked_ + std::chrono::seconds(runtime_->config.auth.timeout);
    auto job = auth_;
    auto result = std::make_shared<AuthResult>();
    const Config& config = runtime_->config;
    const std::string hostname = config.hostname;
    const std::string realm = config.auth.saslRealm;
    const std::string local = saslAddress(endpoint_.destAddress, endpoint_.destPort);
    const std::string remote = saslAddress(endpoint_.address, endpoint_.port);
    const std::string prefix = prefix_;
    const std::uint64_t generation = authGeneration_;
    Server& server = server_;
    const std::uint64_t id = id_;
    server_.authWorkers().submit(
        [job, result, step, hostname, realm, local, remote, prefix] {
            if (job->abandoned) {
                return;  // nobody waits for it; the completion is ignored as well
            }
            if (!job->attempt) {
                job->attempt = std::make_unique<sasl::Attempt>(hostname, realm, local, remote, prefix);
            }
            *result = step(*job->attempt);
        },
        [&server, id, generation, result] {
            if (Session* session = server.findSession(id)) {
                session->authFinished(generation, *result);
            }
        },
        deadline);
}

void Session::authFinished(std::uint64_t generation, const AuthResult& result) {
    if (generation != authGeneration_ || closing_) {
        return;  // cancelled, timed out or closed meanwhile
    }
    stopTimer(authTimer_);
    if (result.status != AuthResult::Status::More) {
        auth_.reset();
    }
    if (result.status == AuthResult::Status::Fail && holdAuthFailure(authAsked_)) {
        heldAuth_ = result;  // the engine stays in AuthBackend: input waits, no reply yet
        return;
    }
    if (result.status == AuthResult::Status::Done) {
        server_.guard().authSucceeded(userKey(result.username, defaultRealm(runtime_->config)));
        if (pendingCredential_) {
            server_.credentials().put(pendingCredential_->first, pendingCredential_->second, result.username);
        }
    }
    if (result.status != AuthResult::Status::More) {
        pendingCredential_.reset();
    }
    if (result.status == AuthResult::Status::Temp) {
        // The customer's password was never judged: 454, and nothing for the guard to count.
        passwordBackendProblem("error", result);
        return;
    }
    protocol_.onAuthResult(result);
    updateReading();
}

void Session::passwordBackendProblem(const char* kind, AuthResult result) {
    server_.metrics().authBackendError(kind);
    result.status = AuthResult::Status::Temp;
    result.reason = "password backend problem: " + result.reason;
    protocol_.onAuthResult(result);
    updateReading();
}

bool Session::holdAuthFailure(std::chrono::steady_clock::time_point asked) {
    // Unknown user, wrong password, any mechanism: the same count and the same delay.  The
    // delay runs from the moment the password arrived, so the backend's own time (a lookup
    // that finds no user may be quicker) is hidden inside it.
    // Per-user counts key on the account, not on its spelling (identity.h): a guesser cannot
    // reset them by trying "ALICE", " alice" or "alice@<realm>".
    double delay = server_.guard().authFailed(endpoint_.ip, who(),
                                              userKey(protocol_.user(), defaultRealm(runtime_->config)));
    if (delay <= 0) {
        return false;
    }
    delay -= std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    if (delay <= 0) {
        delay = 0;  // still from the timer: never re-entrantly from a worker's completion
    }
    const auto micros = static_cast<long long>(delay * 1e6);
    const timeval wait{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    startTimer(penaltyTimer_, server_.base(), &Session::penaltyCb, this, wait);
    penaltyFrom_ = std::chrono::steady_clock::now();
    return true;
}

void Session::penaltyCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    if (session->closing_) {
        return;
    }
    session->releaseHeldFailure();
    session->updateReading();
}

void Session::releaseHeldFailure() {
    stopTimer(penaltyTimer_);
    if (heldAuth_) {
        const AuthResult result = *heldAuth_;
        heldAuth_.reset();
        protocol_.onAuthResult(result);
    } else if (heldReply_) {
        const Reply reply = *heldReply_;
        heldReply_.reset();
        protocol_.onUpstreamReply(reply);
    }
}

void Session::authTimeoutCb(evutil_socket_t, short, void* self) {
    auto* session = static_cast<Session*>(self);
    const AuthWorkers::Load load = session->server_.authWorkers().load();
    ++session->authGeneration_;  // a late answer from the worker is ignored
    session->abandonAuthJob();
    session->passwordBackendProblem(
        "timeout", AuthResult{AuthResult::Status::Temp, {}, {},
                              "no answer within auth.timeout (" + std::to_string(session->runtime_->config.auth.timeout) +
                                  "s; " + std::to_string(load.busy) + " of " + std::to_string(load.threads) +
                                  " workers busy, " + std::to_string(load.queued) + " checks queued)"});
}

void Session::abandonAuthJob() {
    if (auth_) {
        auth_->abandoned = true;
        auth_.reset();
    }
}

void Session::authCancel() {
    ++authGeneration_;
    abandonAuthJob();
    stopTimer(authTimer_);
    stopTimer(penaltyTimer_);
    heldAuth_.reset();
    heldReply_.reset();
    penaltyFrom_.reset();
}

}  // namespace subproxy
