// The customer-side engine, AUTH (RFC 4954): the command, the SASL exchange with the backend
// or the MSA, and the hand-over to the MSA session.  See client_protocol.h.
#include <algorithm>

#include "wire/base64.h"
#include "engine/client_protocol.h"
#include "wire/identity.h"
#include "wire/sasl_payload.h"
#include "wire/text_util.h"
#include "wire/xtext.h"

namespace subproxy {

namespace {

// "PLAIN dGVzdA==" -> {"PLAIN", "dGVzdA=="}
std::pair<std::string, std::optional<std::string>> splitAuthArgument(std::string_view arg) {
    const auto space = arg.find(' ');
    if (space == std::string_view::npos) {
        return {toUpper(arg), std::nullopt};
    }
    return {toUpper(arg.substr(0, space)), std::string(trimSpaces(arg.substr(space + 1)))};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AUTH

void ClientProtocol::cmdAuth(const Command& cmd) {
    if (authenticated_) {
        replyError(503, "5.5.1 Error: already authenticated");
        return;
    }
    if (!ehloSeen_) {
        replyError(503, "5.5.1 Error: send EHLO first");
        return;
    }
    // Named, not a structured binding: lambdas below capture `mech` (C++17 forbids capturing
    // structured bindings; clang refuses it).
    const auto parts = splitAuthArgument(cmd.arg);
    const std::string& mech = parts.first;
    const std::optional<std::string>& initial = parts.second;
    if (mech.empty()) {
        replyError(501, "5.5.4 Syntax: AUTH mechanism");
        return;
    }
    const auto& offered = config_.auth.mechanisms;
    if (std::find(offered.begin(), offered.end(), mech) == offered.end()) {
        // A mail program set to "secure password authentication" (NTLM, GSSAPI) or one of
        // the mechanisms we do not offer: name the ones that work.
        replyError(504, "5.5.4 Unsupported authentication mechanism: set your mail program to use "
                        "a normal password (" + join(offered, " ") + ")");
        return;
    }
    std::optional<std::string> decoded;
    if (initial) {
        if (mech == "CRAM-MD5") {
            replyError(501, "5.7.0 Error: CRAM-MD5 takes no initial response");
            return;
        }
        if (*initial == "=") {
            decoded = std::string();
        } else {
            decoded = decodeBase64(*initial);
            if (!decoded) {
                replyError(501, "5.5.2 Error: invalid base64 data");
                return;
            }
        }
    }
    host_.authLineRead();
    authMech_ = mech;
    authResponses_ = 0;
    replayUser_.clear();
    replayPassword_.clear();
    user_.clear();
    if (decoded) {
        if (const auto refusal = captureCredentials(*decoded)) {
            refuseAuth(*refusal);
            return;
        }
    }
    if (config_.auth.backend == AuthBackend::Upstream) {
        beginRelayedAuth("AUTH " + mech + (initial ? " " + *initial : std::string()));
    } else {
        beginSaslAuth(mech, decoded);
    }
}

std::optional<ClientProtocol::AuthRefusal> ClientProtocol::captureCredentials(const std::string& decoded) {
    const int response = authResponses_++;
    if (authMech_ == "PLAIN") {
        if (const auto fields = splitPlain(decoded)) {
            user_ = fields->authcid;  // for the log, even when refused below
            if (auto refusal = checkName(fields->authcid, false)) {
                return refusal;
            }
            if (auto refusal = checkName(fields->authzid, true)) {
                return refusal;
            }
        }
        const auto creds = parsePlain(decoded);
        if (!creds || !(creds->authzid.empty() || creds->authzid == creds->authcid)) {
            // Malformed PLAIN message, or an authzid naming someone else (byte for byte:
            // "alice " is not "alice"): no proxy authorization here.  Same reply as a wrong
            // password.
            return AuthRefusal{535, "5.7.8 " + config_.replies.authFailed, true,
                               "malformed PLAIN message or foreign authorization identity"};
        }
        replayUser_ = creds->authcid;
        replayPassword_ = creds->password;
    } else if (authMech_ == "LOGIN") {
        if (response == 0) {
            user_ = decoded;
            if (auto refusal = checkName(decoded, false)) {
                return refusal;
            }
            replayUser_ = decoded;
        } else {
            // Cyrus compares passwords as C strings (checkpw.c strcmp): "secret\0anything"
            // would pass for "secret", here and at an MSA running Cyrus.
            if (decoded.find('\0') != std::string::npos) {
                return AuthRefusal{501, "5.5.2 Error: NUL characters are not allowed in a password", false,
                                   "NUL character in the password"};
            }
            replayPassword_ = decoded;
        }
    } else if (authMech_ == "CRAM-MD5") {
        // "user digest": the digest follows the last space, as Cyrus' cram plugin reads it.
        user_ = decoded.substr(0, decoded.rfind(' '));
        if (auto refusal = checkName(user_, false)) {
            return refusal;
        }
    }
    return std::nullopt;
}

std::optional<ClientProtocol::AuthRefusal> ClientProtocol::checkName(std::string_view name, bool authzid) const {
    const NameCheck check =
        authzid ? checkAuthzid(name) : checkUserName(name, defaultRealm(config_), sendsXclientLogin());
    const std::string what = authzid ? "authorization identity" : "user name";
    switch (check) {
    case NameCheck::Ok:
        return std::nullopt;
    case NameCheck::ControlCharacters:
        // Cyrus stops reading a name at its first NUL: "alice\0x1", "alice\0x2"... would
        // all be checked as alice while each looked like a new name to the guard.
        return AuthRefusal{501, "5.5.2 Error: control characters are not allowed in the " + what, false,
                           "control characters in the " + what};
    case NameCheck::TooLong:
        return AuthRefusal{501, "5.5.2 Error: " + what + " too long", false, what + " too long"};
    }
    return std::nullopt;
}

void ClientProtocol::refuseAuth(const AuthRefusal& refusal) {
    if (state_ == State::AuthResponse) {
        // Mid-exchange: the backend waits for a response it will not get.
        if (config_.auth.backend == AuthBackend::Sasl) {
            host_.authCancel();
        } else if (upstreamUp_) {
            // Nothing of the refused response goes to the MSA; its half-done exchange goes
            // with the session, and the next AUTH opens a fresh one.
            host_.upstreamAbort();
            upstreamUp_ = false;
        }
    }
    host_.logWarning("SASL " + authMech_ + " authentication " + (refusal.failure ? "failed: " : "refused: ") +
                     refusal.reason + ", sasl_username=" + printable(user_));
    if (refusal.failure) {
        ++counters_.authFailures;
        count([&](Metrics& m) { m.authResult(authMech_, false); });
    }
    authFailed(refusal.code, refusal.text, refusal.failure);
}

bool ClientProtocol::sendsXclientLogin() const {
    return config_.auth.backend == AuthBackend::Sasl && config_.upstream.login == UpstreamLogin::Xclient;
}

void ClientProtocol::beginSaslAuth(const std::string& mech, const std::optional<std::string>& initial) {
    setState(State::AuthBackend);
    host_.authStart(mech, initial);
}

void ClientProtocol::beginRelayedAuth(const std::string& line) {
    pendingAuthLine_ = line;
    if (!upstreamUp_) {
        openUpstream();
        return;
    }
    setState(State::AuthBackend);
    relay(PendingKind::AuthLine, pendingAuthLine_);
}

void ClientProtocol::handleAuthResponse(const std::string& line) {
    host_.authLineRead();
    if (line == "*") {
        if (config_.auth.backend == AuthBackend::Sasl) {
            host_.authCancel();
            setState(State::Command);
            replyError(501, "5.0.0 Authentication aborted");
        } else {
            setState(State::AuthBackend);
            relay(PendingKind::AuthLine, "*");  // the MSA answers 501 itself
        }
        return;
    }
    std::optional<std::string> decoded = line.empty() ? std::string() : decodeBase64(line);
    if (!decoded) {
        if (config_.auth.backend == AuthBackend::Sasl) {
            host_.authCancel();
            setState(State::Command);
            replyError(501, "5.5.2 Error: invalid base64 data");
        } else {
            setState(State::AuthBackend);
            relay(PendingKind::AuthLine, "*");
            // The MSA's 501 to the cancel is forwarded; it says what went wrong well enough.
        }
        return;
    }
    if (const auto refusal = captureCredentials(*decoded)) {
        refuseAuth(*refusal);
        return;
    }
    setState(State::AuthBackend);
    if (config_.auth.backend == AuthBackend::Sasl) {
        host_.authStep(*decoded);
    } else {
        relay(PendingKind::AuthLine, line);
    }
}

void ClientProtocol::onAuthResult(const AuthResult& result) {
    if (state_ != State::AuthBackend) {
        return;  // cancelled or closed meanwhile
    }
    switch (result.status) {
    case AuthResult::Status::More:
        setState(State::AuthResponse);
        reply(334, encodeBase64(result.challenge));
        break;
    case AuthResult::Status::Done:
        // One spelling per account for the MSA, the log and the report: "alice@<default
        // realm>" logs in as "alice", as a bare "alice" does.
        user_ = canonicalUser(result.username, defaultRealm(config_));
        host_.logInfo("SASL " + authMech_ + " authentication succeeded, sasl_username=" + printable(user_) +
                      (user_ != result.username ? ", cyrus_username=" + printable(result.username) : std::string()));
        if (sendsXclientLogin() && xtextLength(user_) > kXclientMaxValue) {
            // Checked as typed above; this catches a backend that lengthened the name.  Postfix
            // would refuse the XCLIENT, and the customer would get 454 for ever.
            authFailed(535, "5.7.8 Error: user name too long", false);
            return;
        }
        if (accountRefusesLogin()) {
            refuseFlaggedLogin();
            return;
        }
        startPasswordCheck();  // off the loop, while the MSA session opens
        openUpstream();
        return;
    case AuthResult::Status::Fail:
        ++counters_.authFailures;
        count([&](Metrics& m) { m.authResult(authMech_, false); });
        host_.logWarning("SASL " + authMech_ + " authentication failed: " + printable(result.reason) +
                         ", sasl_username=" + printable(user_));
        authFailed(535, "5.7.8 " + config_.replies.authFailed, true);
        return;
    case AuthResult::Status::Temp:
        host_.logWarning("SASL " + authMech_ + " authentication temporarily unavailable: " +
                         printable(result.reason) + ", sasl_username=" + printable(user_));
        authFailed(454, "4.7.0 Temporary authentication failure, try again later", false);
        return;
    }
    processInput();
}

void ClientProtocol::authFailed(int code, const std::string& text, bool countsAsFailure) {
    (void)countsAsFailure;
    authVerdict(code);
    if (code == 454) {
        count([](Metrics& m) { ++m.authTemporaryFailures; });
    }
    replayUser_.clear();
    replayPassword_.clear();
    if (state_ != State::Command) {
        setState(State::Command);
    }
    replyError(code, text);
    if (state_ != State::Closed &&
        counters_.authFailures >= static_cast<unsigned>(config_.limits.maxAuthFailures)) {
        reply(421, "4.7.0 " + config_.hostname + " Error: too many failed authentications");
        close("too many AUTH failures");
        return;
    }
    processInput();
}

void ClientProtocol::markAuthenticated() {
    authenticated_ = true;
    host_.authenticated();
}

void ClientProtocol::authSucceeded() {
    markAuthenticated();
    authVerdict(235);
    if (config_.upstream.login != UpstreamLogin::Replay) {
        replayPassword_.clear();
    }
    setState(State::Command);
    count([&](Metrics& m) { m.authResult(authMech_, true); });
    // migration.notice: an extra first line tells the customer to move to port 587.
    if (!config_.migration.notice.empty() && !clientGone_) {
        host_.sendToClient(noticeLine(235));
    }
    if (const std::string notice = passwordNoticeLine(); !notice.empty() && !clientGone_) {
        host_.sendToClient(notice);  // accounts.passwords.notice, for a weak password
    }
    reply(235, "2.7.0 Authentication successful");
    // Only one input window needs widening: relayed commands keep the command limit.
    reader_.setLimit(static_cast<std::size_t>(config_.limits.commandLineLength));
}

void ClientProtocol::authVerdict(int code) {
    if (code / 100 == 2) {
        host_.authAnswered(AuthOutcome::Success);
    } else if (code == 535) {
        host_.authAnswered(AuthOutcome::Failure);
    } else if (code / 100 == 4) {
        host_.authAnswered(AuthOutcome::Temporary);
    }
    // 334 asks for more; 501 and other refusals judge the syntax, not the credentials.
}

void ClientProtocol::openUpstream() {
    UpstreamIdentity identity;
    identity.login = config_.auth.backend == AuthBackend::Sasl ? user_ : std::string();
    if (config_.upstream.login == UpstreamLogin::Replay) {
        identity.password = replayPassword_;
        identity.login = replayUser_.empty() ? user_ : replayUser_;
    } else if (reopening_ && config_.auth.backend == AuthBackend::Upstream) {
        identity.login = replayUser_;
        identity.password = replayPassword_;
        identity.logInAgain = true;
    }
    identity.helo = helo_;
    identity.client = endpoint_;
    setState(State::UpstreamOpening);
    host_.upstreamOpen(identity);
}

// After a body we refused, the MSA session (dropped mid-DATA) can be replaced: with backend
// "sasl" the identity is ours to hand over again; with backend "upstream" only when the
// customer's PLAIN/LOGIN credentials can be replayed (a CRAM-MD5 answer cannot).
bool ClientProtocol::canReopenUpstream() const {
    return config_.auth.backend == AuthBackend::Sasl || (!replayUser_.empty() && !replayPassword_.empty());
}

void ClientProtocol::onUpstreamReady(const EhloCaps& caps) {
    if (state_ != State::UpstreamOpening) {
        return;
    }
    msaCaps_ = caps;
    upstreamUp_ = true;
    if (reopening_) {
        reopening_ = false;
        setState(State::Command);
    } else if (config_.auth.backend == AuthBackend::Upstream) {
        setState(State::AuthBackend);
        relay(PendingKind::AuthLine, pendingAuthLine_);
        return;
    } else if (passwordCheck_ == PasswordCheck::Pending && !config_.accounts.passwords.notice.empty()) {
        successHeld_ = true;  // onPasswordChecked() answers: a weak password's notice goes before the 235
        return;
    } else {
        authSucceeded();
    }
    processInput();
}

}  // namespace subproxy
