#include "io/password_quality.h"

#include <openssl/crypto.h>
#include <pwquality.h>

#include <cstring>
#include <memory>
#include <mutex>

namespace subproxy {

void SecretCopy::wipe() {
    if (!value_.empty()) {
        OPENSSL_cleanse(value_.data(), value_.size());
        value_.clear();
    }
}

std::optional<PasswordQuality> measurePassword(const std::string& password, const std::string& user) {
    static std::mutex serial;  // FascistCheck (cracklib) is not reentrant
    std::lock_guard<std::mutex> lock(serial);
    const std::unique_ptr<pwquality_settings_t, void (*)(pwquality_settings_t*)> settings(
        pwquality_default_settings(), pwquality_free_settings);
    if (!settings) {
        return std::nullopt;
    }
    // The system's policy (minlen, dictcheck, usercheck...) when the operator wrote one.
    pwquality_read_config(settings.get(), nullptr, nullptr);
    void* aux = nullptr;
    const int score = pwquality_check(settings.get(), password.c_str(), nullptr, user.c_str(), &aux);
    // aux is not ours to free: cracklib's static message for PWQ_ERROR_CRACKLIB_CHECK (never
    // the password), an integer cast to a pointer for the others.  Only the category is kept.
    // A dictionary that cannot be opened fails every password as "based on a dictionary word":
    // that is no judgement of the password (cracklib-runtime missing or not built).
    const bool noDictionary = score == PWQ_ERROR_CRACKLIB_CHECK && aux != nullptr &&
                              std::strstr(static_cast<const char*>(aux), "error loading dictionary") != nullptr;
    if (noDictionary) {
        return std::nullopt;
    }
    PasswordQuality quality;
    switch (score) {
    case PWQ_ERROR_CRACKLIB_CHECK:
        quality.problem = PasswordQuality::Problem::Dictionary;
        break;
    case PWQ_ERROR_USER_CHECK:
    case PWQ_ERROR_GECOS_CHECK:
    case PWQ_ERROR_BAD_WORDS:
        quality.problem = PasswordQuality::Problem::UserName;
        break;
    case PWQ_ERROR_MEM_ALLOC:
    case PWQ_ERROR_FATAL_FAILURE:
    case PWQ_ERROR_INTEGER:
    case PWQ_ERROR_CFGFILE_OPEN:
    case PWQ_ERROR_CFGFILE_MALFORMED:
    case PWQ_ERROR_UNKNOWN_SETTING:
    case PWQ_ERROR_NON_INT_SETTING:
    case PWQ_ERROR_NON_STR_SETTING:
    case PWQ_ERROR_EMPTY_PASSWORD:
        return std::nullopt;
    default:
        if (score < 0) {
            quality.problem = PasswordQuality::Problem::TooSimple;  // short, few classes, repeats...
        } else {
            quality.score = score;
        }
    }
    return quality;
}

}  // namespace subproxy
