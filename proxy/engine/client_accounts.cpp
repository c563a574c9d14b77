// The customer-side engine, compromised accounts (issue 12): the sending limits at MAIL and RCPT,
// what the MSA accepted counted back, the login refused while the account is flagged for its
// places, and the weak-password check and notice.  The counters are the host's (per account,
// shared by all sessions); the verdicts are account_policy.h's.  See client_protocol.h.
#include "engine/client_protocol.h"
#include "wire/identity.h"
#include "wire/text_util.h"

namespace subproxy {

void ClientProtocol::relayCounted(PendingKind kind, const std::string& line, SendingKind sending, std::string detail) {
    const AccountsConfig& accounts = config_.accounts;
    if (!authenticated_ || user_.empty() || !limitsApply(accounts)) {
        relay(kind, line, std::move(detail));
        return;
    }
    if (accountRefusesSending(sending, line)) {
        return;
    }
    host_.accountHold(user_, sending);
    relay(kind, line, std::move(detail));
    pending_.back().accountHeld = true;  // settled by its reply (accountReply), or at close
}

bool ClientProtocol::accountAwaitsReplies(SendingKind kind) const {
    for (const Pending& p : pending_) {
        if (p.accountHeld && (p.kind == PendingKind::Rcpt) == (kind == SendingKind::Recipient)) {
            return true;
        }
        if (kind == SendingKind::Message && p.kind == PendingKind::DataEnd && accountTransactionHeld_) {
            return true;
        }
    }
    return false;
}

bool ClientProtocol::accountAwaitsReplies() const {
    return accountAwaitsReplies(SendingKind::Message) || accountAwaitsReplies(SendingKind::Recipient);
}

bool ClientProtocol::accountRefusesSending(SendingKind kind, const std::string& line) {
    const AccountsConfig& accounts = config_.accounts;
    const auto refusal = checkSending(accounts, host_.accountView(user_), kind);
    if (!refusal) {
        return false;
    }
    if (accountAwaitsReplies(kind)) {
        deferred_ = line;  // processInput() runs it again once they are answered
        return true;
    }
    // One stable line per refusal for fail2ban and grep; the account is flagged once.
    host_.logWarning("accounts: sending limit reached: " + sendingRefusalFacts(accounts, *refusal) +
                     ", sasl_username=" + printable(user_));
    host_.accountLimited(user_, *refusal);
    count([&](Metrics& m) { ++m.accounts.limitRefusals[kind == SendingKind::Message ? 0 : 1]; });
    // Not an error of the customer's: no step toward max_errors, and a 4xx its program retries.
    reply(451, "4.7.1 " + sendingRefusalText(accounts, *refusal));
    return true;
}

void ClientProtocol::accountReply(const Pending& done, bool positive) {
    if (!done.accountHeld) {
        return;
    }
    if (done.kind == PendingKind::Rcpt) {
        host_.accountSettle(user_, SendingKind::Recipient, positive);
    } else if (done.kind == PendingKind::Mail) {
        if (!positive) {
            host_.accountSettle(user_, SendingKind::Message, false);
        } else if (accountTransactionHeld_) {
            host_.accountSettle(user_, SendingKind::Message, false);  // cannot happen: MAIL in a transaction
        } else {
            accountTransactionHeld_ = true;  // counted at the 250 after DATA, or dropped with the transaction
        }
    }
}

void ClientProtocol::accountEndTransaction() {
    if (accountTransactionHeld_) {
        accountTransactionHeld_ = false;
        host_.accountSettle(user_, SendingKind::Message, false);
    }
}

void ClientProtocol::accountReleaseAll() {
    for (Pending& p : pending_) {
        if (p.accountHeld) {
            p.accountHeld = false;
            host_.accountSettle(user_, p.kind == PendingKind::Rcpt ? SendingKind::Recipient : SendingKind::Message,
                                false);
        }
    }
    accountEndTransaction();
}

bool ClientProtocol::accountRefusesLogin() {
    const AccountsConfig& accounts = config_.accounts;
    // With the limits alone the login is still told to the host: several gateways read the
    // account's count then, before its first MAIL.
    if ((!accounts.places.enabled && !limitsApply(accounts)) || user_.empty()) {
        return false;
    }
    if (!refusesLogin(accounts, host_.accountLogin(user_))) {
        return false;
    }
    host_.logWarning("accounts: login refused: account flagged for logins from too many places "
                     "(accounts.places.action = refuse), sasl_username=" + printable(user_));
    count([](Metrics& m) { ++m.accounts.loginRefusals; });
    return true;
}

void ClientProtocol::refuseFlaggedLogin() {
    const int code = config_.accounts.places.refuseCode;
    // The password was right: nothing for the guard to count (not a failure of the customer's).
    authFailed(code, (code == 535 ? "5.7.8 " : "4.7.0 ") + loginRefusalText(config_.accounts), false);
}

bool ClientProtocol::accountRefusesMsaLogin() {
    if (!config_.accounts.places.enabled && !limitsApply(config_.accounts)) {
        return false;
    }
    // Backend "upstream": the MSA said 235; the account is known by the name as typed, spelled
    // as the 235 branch of onUpstreamReply spells it.
    user_ = canonicalUser(user_, defaultRealm(config_));
    if (!accountRefusesLogin()) {
        return false;
    }
    // The MSA session is logged in: it goes, and the customer gets the refusal instead of 235.
    host_.upstreamAbort();
    upstreamUp_ = false;
    refuseFlaggedLogin();
    return true;
}

void ClientProtocol::startPasswordCheck() {
    if (!config_.accounts.passwords.enabled || (authMech_ != "PLAIN" && authMech_ != "LOGIN") ||
        replayPassword_.empty()) {
        return;  // CRAM-MD5 never shows the password
    }
    passwordCheck_ = PasswordCheck::Pending;
    host_.checkPassword(user_, replayPassword_);
}

void ClientProtocol::onPasswordChecked(bool weak) {
    if (state_ == State::Closed || passwordCheck_ != PasswordCheck::Pending) {
        return;
    }
    passwordCheck_ = weak ? PasswordCheck::Weak : PasswordCheck::Fine;
    if (successHeld_) {
        successHeld_ = false;
        authSucceeded();
        processInput();
    }
}

std::string ClientProtocol::passwordNoticeLine() const {
    const std::string& notice = config_.accounts.passwords.notice;
    return passwordCheck_ == PasswordCheck::Weak && !notice.empty() ? "235-" + notice + "\r\n" : std::string();
}

}  // namespace subproxy
