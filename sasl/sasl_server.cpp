#include "sasl_server.h"

#include <fcntl.h>
#include <sasl/saslutil.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "cyrus_file.h"
#include "os/log.h"
#include "wire/text_util.h"

namespace subproxy::sasl {

namespace {

std::string configPath;  // read by Cyrus through getConfPath for the life of the process
std::optional<std::string> sasldbPath;  // the password store, when it is sasldb; fixed at initialize()

int getConfPath(void*, const char** path) {
    *path = configPath.c_str();
    return SASL_OK;
}

int logFromCyrus(void*, int level, const char* message) {
    if (message && level <= SASL_LOG_WARN) {
        logWarning(std::string("SASL: ") + printable(message, 300));
    }
    return SASL_OK;
}

// Cyrus' default mutexes are no-ops; we call it from several worker threads.
void* mutexAlloc() { return new std::mutex; }
int mutexLock(void* m) {
    static_cast<std::mutex*>(m)->lock();
    return SASL_OK;
}
int mutexUnlock(void* m) {
    static_cast<std::mutex*>(m)->unlock();
    return SASL_OK;
}
void mutexFree(void* m) { delete static_cast<std::mutex*>(m); }

using Callback = int (*)();
// Cyrus stores every callback as int(*)(void); void(*)(void) is the one cast GCC accepts as generic.
template <typename F>
Callback asCallback(F* fn) {
    return reinterpret_cast<Callback>(reinterpret_cast<void (*)()>(fn));
}

const sasl_callback_t globalCallbacks[] = {
    {SASL_CB_GETCONFPATH, asCallback(&getConfPath), nullptr},
    {SASL_CB_LOG, asCallback(&logFromCyrus), nullptr},
    {SASL_CB_LIST_END, nullptr, nullptr},
};

bool isTemporary(int rc) {
    // RFC 4954 §6 / Postfix smtpd_sasl_glue: backend trouble is 454, not 535.
    return rc == SASL_FAIL || rc == SASL_NOMEM || rc == SASL_TRYAGAIN || rc == SASL_UNAVAIL;
}

}  // namespace

void initialize(const std::string& service, const std::string& configDir) {
    static bool done = false;
    if (done) {
        return;  // Cyrus cannot be re-initialised in one process
    }
    configPath = configDir;
    if (const auto sasldb = sasldbFile(readCyrusFile(cyrusFilePath(configDir, service)))) {
        sasldbPath = sasldb->value;  // Cyrus too reads the application file only this once
    }
    sasl_set_mutex(&mutexAlloc, &mutexLock, &mutexUnlock, &mutexFree);
    const int rc = sasl_server_init(globalCallbacks, service.c_str());
    if (rc != SASL_OK) {
        throw std::runtime_error("Cyrus SASL initialisation failed: " +
                                 std::string(sasl_errstring(rc, nullptr, nullptr)));
    }
    done = true;
}

std::string passwordStoreProblem() {
    if (!sasldbPath) {
        return {};
    }
    const int fd = ::open(sasldbPath->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        // Cause first: the engine's log line cuts the reason to 100 bytes.
        return std::string("sasldb: ") + std::strerror(errno) + " (" + *sasldbPath + ")";
    }
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ::close(fd);
    return regular ? std::string() : "sasldb: not a regular file (" + *sasldbPath + ")";
}

int Attempt::log(void* self, int level, const char* message) {
    auto* attempt = static_cast<Attempt*>(self);
    constexpr std::size_t kMaxHeld = 16;  // a step logs one or two; more are not held back
    if (!message || level > SASL_LOG_WARN) {
        return SASL_OK;
    }
    if (attempt->holding_ && attempt->held_.size() < kMaxHeld) {
        attempt->held_.emplace_back(message);
    } else {
        logWarning(attempt->logPrefix_ + "SASL: " + printable(message, 300));
    }
    return SASL_OK;
}

void Attempt::releaseHeld(AuthResult::Status status, const std::string& detail) {
    for (const std::string& line : held_) {
        // A plugin sets its reason for a wrong password with sasl_seterror(), which also logs
        // it: the same text is in sasl_errdetail(), which the engine's failure line carries.
        // Backend trouble (Temp: "cannot connect to saslauthd server") is the cause the
        // outcome line lacks, so it stays, as does anything said on the way to a success.
        if (status == AuthResult::Status::Fail && !line.empty() && detail.find(line) != std::string::npos) {
            continue;
        }
        logWarning(logPrefix_ + "SASL: " + printable(line, 300));
    }
    held_.clear();
}

Attempt::Attempt(const std::string& hostname, const std::string& realm, const std::string& local,
                 const std::string& remote, std::string logPrefix)
    : logPrefix_(std::move(logPrefix)),
      callbacks_{{SASL_CB_LOG, asCallback(&Attempt::log), this}, {SASL_CB_LIST_END, nullptr, nullptr}} {
    sasl_conn_t* conn = nullptr;
    int rc = sasl_server_new("smtp", hostname.c_str(), realm.empty() ? nullptr : realm.c_str(),
                             local.empty() ? nullptr : local.c_str(), remote.empty() ? nullptr : remote.c_str(),
                             callbacks_, 0, &conn);
    if (rc != SASL_OK) {
        setupError_ = std::string("sasl_server_new: ") + sasl_errstring(rc, nullptr, nullptr);
        if (conn) {
            sasl_dispose(&conn);
        }
        return;
    }
    conn_.reset(conn);
    // No SASL security layer (TLS is ours); PLAIN/LOGIN only because TLS is up (ssf > 1).
    sasl_security_properties_t props{};
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = 0;
    props.security_flags = SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT;
    sasl_setprop(conn, SASL_SEC_PROPS, &props);
    sasl_ssf_t external = 256;
    sasl_setprop(conn, SASL_SSF_EXTERNAL, &external);
}

AuthResult Attempt::result(int rc, const char* out, unsigned outLen) {
    AuthResult r;
    if (rc == SASL_OK) {
        const void* name = nullptr;
        if (sasl_getprop(conn_.get(), SASL_USERNAME, &name) == SASL_OK && name) {
            r.username = static_cast<const char*>(name);
        }
        r.status = AuthResult::Status::Done;
        releaseHeld(r.status, {});
        return r;
    }
    if (rc == SASL_CONTINUE) {
        r.status = AuthResult::Status::More;
        r.challenge.assign(out ? out : "", out ? outLen : 0);
        releaseHeld(r.status, {});
        return r;
    }
    r.reason = sasl_errdetail(conn_.get());
    r.status = isTemporary(rc) ? AuthResult::Status::Temp : AuthResult::Status::Fail;
    releaseHeld(r.status, r.reason);  // before any rewording below: Cyrus' own text is compared
    // Cyrus' sasldb reports a missing database file as an unknown user (db_berkeley.c: "Treat
    // as SASL_NOUSER"), so an outage would come out as a wrong password: 535, counted by the
    // guard, and a ban for every honest customer.  Its SASL_FAIL for an unreadable file says
    // only "generic failure".  Either way, a store that cannot be opened is the reason.
    if (std::string problem = passwordStoreProblem(); !problem.empty()) {
        r.status = AuthResult::Status::Temp;
        r.reason = std::move(problem);
        return r;
    }
    // NOUSER is reported as BADAUTH: unknown user and wrong password look the same (privacy).
    if (rc == SASL_NOUSER) {
        r.reason = "authentication failure";
    }
    return r;
}

AuthResult Attempt::start(const std::string& mechanism, const std::optional<std::string>& initial) {
    if (!conn_) {
        return AuthResult{AuthResult::Status::Temp, {}, {}, setupError_};
    }
    const char* out = nullptr;
    unsigned outLen = 0;
    holding_ = true;
    const int rc = sasl_server_start(conn_.get(), mechanism.c_str(), initial ? initial->data() : nullptr,
                                     initial ? static_cast<unsigned>(initial->size()) : 0, &out, &outLen);
    holding_ = false;
    return result(rc, out, outLen);
}

AuthResult Attempt::step(const std::string& response) {
    if (!conn_) {
        return AuthResult{AuthResult::Status::Temp, {}, {}, setupError_};
    }
    const char* out = nullptr;
    unsigned outLen = 0;
    holding_ = true;
    const int rc = sasl_server_step(conn_.get(), response.data(), static_cast<unsigned>(response.size()), &out,
                                    &outLen);
    holding_ = false;
    return result(rc, out, outLen);
}

std::vector<std::string> Attempt::mechanisms() const {
    std::vector<std::string> mechs;
    const char* list = nullptr;
    if (!conn_ || sasl_listmech(conn_.get(), nullptr, "", " ", "", &list, nullptr, nullptr) != SASL_OK || !list) {
        return mechs;
    }
    std::string all = list;
    std::size_t pos = 0;
    while (pos < all.size()) {
        const std::size_t end = all.find(' ', pos);
        mechs.push_back(toUpper(all.substr(pos, end == std::string::npos ? std::string::npos : end - pos)));
        if (end == std::string::npos) {
            break;
        }
        pos = end + 1;
    }
    return mechs;
}

std::vector<std::string> availableMechanisms(const std::string& hostname, const std::string& realm) {
    return Attempt(hostname, realm, "", "").mechanisms();
}

}  // namespace subproxy::sasl
