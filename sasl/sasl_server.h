// Cyrus SASL, server side, behind a narrow interface (Postfix xsasl): one Attempt per AUTH
// command (a fresh sasl_conn_t each time: CVE-2011-1720), start/step -> Done | More | Fail |
// Temp.  Unknown user and wrong password both come out as Fail; a backend that cannot check
// (Cyrus SASL_FAIL/UNAVAIL/TRYAGAIN/NOMEM, saslauthd down, sasldb missing) as Temp.  Calls may block (saslauthd,
// Berkeley DB): run them on AuthWorkers, one thread at a time per Attempt.
#pragma once
#include <sasl/sasl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/client_protocol.h"

namespace subproxy::sasl {

// Once per process, before any thread uses SASL.  `configDir` holds <service>.conf
// (pwcheck_method, mech_list, sasldb_path, …).  Throws std::runtime_error.
void initialize(const std::string& service, const std::string& configDir);

// Why the password store cannot be used now, or "" (also when it is not sasldb): the sasldb
// file named by the application file is missing, unreadable or not a file.  Safe from any
// thread; called after a failed check, so that an outage is told from a wrong password.
std::string passwordStoreProblem();

// The mechanisms Cyrus can serve with this setup (after TLS), e.g. for `subproxy -t`.
std::vector<std::string> availableMechanisms(const std::string& hostname, const std::string& realm);

struct ConnFree {
    void operator()(sasl_conn_t* conn) const { sasl_dispose(&conn); }
};

class Attempt {
public:
    // `local`/`remote` as Cyrus wants them: "1.2.3.4;25" / "2001:db8::1;25".
    // `logPrefix` ("[1.2.3.4]:5678: ") starts every line Cyrus logs for this attempt.
    Attempt(const std::string& hostname, const std::string& realm, const std::string& local,
            const std::string& remote, std::string logPrefix = {});
    Attempt(const Attempt&) = delete;
    Attempt& operator=(const Attempt&) = delete;

    AuthResult start(const std::string& mechanism, const std::optional<std::string>& initial);
    AuthResult step(const std::string& response);
    // Mechanisms this connection would offer (sasl_listmech); empty with the setup error.
    std::vector<std::string> mechanisms() const;
    const std::string& setupError() const { return setupError_; }

private:
    AuthResult result(int rc, const char* out, unsigned outLen);
    // Logs what Cyrus said during the step just run, less what the outcome line repeats.
    void releaseHeld(AuthResult::Status status, const std::string& detail);

    static int log(void* self, int level, const char* message);

    std::string logPrefix_;
    // Cyrus' lines during sasl_server_start/step, held until the outcome is known: the one
    // that only repeats why a password failed ("Password verification failed") is dropped,
    // so each failure is one line (the engine's "authentication failed").
    bool holding_ = false;
    std::vector<std::string> held_;
    sasl_callback_t callbacks_[2];  // must outlive conn_: Cyrus keeps the pointer
    std::unique_ptr<sasl_conn_t, ConnFree> conn_;
    std::string setupError_;
};

}  // namespace subproxy::sasl
