// The accounts { } group (issue 12): per-user sending limits, one account from many places,
// weak passwords.  Each part is on when its sub-group is present (and not `enabled = false`).
// The overrides file is read here, so that -t, start-up and SIGHUP check it the same way and a
// bad one keeps the running configuration.  See config_reader.h.
#include "ops/config_reader.h"

namespace subproxy::config_detail {

namespace {

bool readEnabled(const Reader& r, const Setting& s) {
    r.requireGroup(s);
    bool on = true;
    r.optional(s, "enabled", [&](const Setting& v) { on = r.readBool(v); });
    return on;
}

unsigned readCount(const Reader& r, const Setting& v) { return static_cast<unsigned>(r.readInteger(v, 0, 100000000)); }

void readOverrides(const Reader& r, const Setting& v, AccountsConfig::Limits& out) {
    out.overridesFile = r.readNonEmptyString(v);
    std::ifstream in(out.overridesFile);
    if (!in) {
        r.fail(v, "'accounts.limits.overrides_file': cannot read " + out.overridesFile + ": " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::string error;
    auto parsed = parseLimitOverrides(text.str(), out.perUser, &error);
    if (!parsed) {
        r.fail(v, "'accounts.limits.overrides_file' " + out.overridesFile + " " + error);
    }
    out.overrides = std::move(*parsed);
}

void readLimits(const Reader& r, const Setting& s, AccountsConfig::Limits& out) {
    // Reads the keys of 'accounts.limits'.
    out.enabled = readEnabled(r, s);
    r.checkKeys(s, {"enabled", "window", "messages", "recipients", "overrides_file"});
    r.optional(s, "window", [&](const Setting& v) { out.window = static_cast<int>(r.readInteger(v, 60, 7 * 86400)); });
    r.optional(s, "messages", [&](const Setting& v) { out.perUser.messages = readCount(r, v); });
    r.optional(s, "recipients", [&](const Setting& v) { out.perUser.recipients = readCount(r, v); });
    // After the defaults: "-" in the file stands for them.
    r.optional(s, "overrides_file", [&](const Setting& v) { readOverrides(r, v, out); });
}

void readPlaces(const Reader& r, const Setting& s, AccountsConfig::Places& out) {
    // Reads the keys of 'accounts.places'.
    out.enabled = readEnabled(r, s);
    r.checkKeys(s, {"enabled", "window", "max_addresses", "max_destinations", "action", "limited_messages",
                    "limited_recipients", "refuse_code"});
    r.optional(s, "window", [&](const Setting& v) { out.window = static_cast<int>(r.readInteger(v, 60, 90 * 86400)); });
    r.optional(s, "max_addresses", [&](const Setting& v) { out.maxAddresses = static_cast<unsigned>(r.readInteger(v, 0, 200)); });
    r.optional(s, "max_destinations",
               [&](const Setting& v) { out.maxDestinations = static_cast<unsigned>(r.readInteger(v, 0, 200)); });
    r.optional(s, "action", [&](const Setting& v) {
        out.action = r.readEnum<PlacesAction>(
            v, {{"flag", PlacesAction::Flag}, {"limit", PlacesAction::Limit}, {"refuse", PlacesAction::Refuse}});
    });
    r.optional(s, "limited_messages", [&](const Setting& v) { out.limited.messages = readCount(r, v); });
    r.optional(s, "limited_recipients", [&](const Setting& v) { out.limited.recipients = readCount(r, v); });
    r.optional(s, "refuse_code", [&](const Setting& v) {
        out.refuseCode = static_cast<int>(r.readInteger(v, 454, 535));
        if (out.refuseCode != 454 && out.refuseCode != 535) {
            r.fail(v, "'accounts.places.refuse_code' must be 454 (try again later) or 535 (authentication failed)");
        }
    });
}

void readPasswords(const Reader& r, const Setting& s, AccountsConfig::Passwords& out) {
    // Reads the keys of 'accounts.passwords'.
    out.enabled = readEnabled(r, s);
    r.checkKeys(s, {"enabled", "min_score", "notice"});
    r.optional(s, "min_score", [&](const Setting& v) { out.minScore = static_cast<int>(r.readInteger(v, 0, 100)); });
    r.optional(s, "notice", [&](const Setting& v) {
        out.notice = r.readLineText(v);
        if (out.notice.size() > 400) {
            r.fail(v, "'accounts.passwords.notice' must be at most 400 characters (one SMTP reply line)");
        }
    });
}

}  // namespace

void readAccounts(const Reader& r, const Setting& s, AccountsConfig& out) {
    r.requireGroup(s);
    r.checkKeys(s, {"state_file", "flush_interval", "max_users", "contact", "limits", "places", "passwords"});
    r.optional(s, "state_file", [&](const Setting& v) { out.stateFile = r.readNonEmptyString(v); });
    r.optional(s, "flush_interval",
               [&](const Setting& v) { out.flushInterval = static_cast<int>(r.readInteger(v, 1, 86400)); });
    r.optional(s, "max_users", [&](const Setting& v) { out.maxUsers = static_cast<int>(r.readInteger(v, 1, 10000000)); });
    // Ends 4xx reply lines: printable, and short enough to leave room for the rest of the text.
    r.optional(s, "contact", [&](const Setting& v) {
        out.contact = r.readLineText(v);
        if (out.contact.size() > 200) {
            r.fail(v, "'accounts.contact' must be at most 200 characters (it ends an SMTP reply line)");
        }
    });
    r.optional(s, "limits", [&](const Setting& v) { readLimits(r, v, out.limits); });
    r.optional(s, "places", [&](const Setting& v) { readPlaces(r, v, out.places); });
    r.optional(s, "passwords", [&](const Setting& v) { readPasswords(r, v, out.passwords); });
}

}  // namespace subproxy::config_detail
