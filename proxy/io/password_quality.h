// accounts.passwords (issue 12): libpwquality's judgement of a password that just logged in,
// run on a worker thread (AuthWorkers), never on an event loop.  libpwquality reads
// /etc/security/pwquality.conf and asks cracklib's dictionary (cracklib-runtime) whether the
// password is built on a word.
#pragma once
#include <optional>
#include <string>

#include "defence/account_policy.h"

namespace subproxy {

// A copy of a password that is wiped (OPENSSL_cleanse) when it goes, whichever thread drops
// it last and however: after the check, or with a job dropped at shutdown.
class SecretCopy {
public:
    explicit SecretCopy(std::string value) : value_(std::move(value)) {}
    ~SecretCopy() { wipe(); }
    SecretCopy(const SecretCopy&) = delete;
    SecretCopy& operator=(const SecretCopy&) = delete;
    const std::string& value() const { return value_; }
    void wipe();

private:
    std::string value_;
};

// Blocking (cracklib opens its dictionary files); serialised, as cracklib keeps static state.
// nullopt when libpwquality could not run (no memory, no dictionary): nothing is judged.
std::optional<PasswordQuality> measurePassword(const std::string& password, const std::string& user);

}  // namespace subproxy
