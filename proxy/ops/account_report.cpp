#include "ops/account_report.h"

#include "ops/metrics.h"  // jsonString
#include "wire/text_util.h"

namespace subproxy {

namespace {

std::string utc(std::int64_t t) { return formatUtc(t, "%Y-%m-%dT%H:%M:%SZ"); }

std::string text(const std::vector<FlaggedAccount>& accounts) {
    std::string out;
    for (const auto& a : accounts) {
        for (const auto& f : a.flags) {
            // The user is escaped as in the state file: one field, whatever bytes it holds.
            out += escapeField(a.user) + " " + flagReasonName(f.reason) + " first=" + utc(f.first) +
                   " last=" + utc(f.last) + " count=" + std::to_string(f.count) + " " + f.evidence + "\n";
        }
    }
    return out;
}

std::string csv(const std::vector<FlaggedAccount>& accounts) {
    std::string out = "user,reason,first,last,count,evidence\r\n";
    for (const auto& a : accounts) {
        for (const auto& f : a.flags) {
            out += csvField(a.user) + "," + flagReasonName(f.reason) + "," + utc(f.first) + "," + utc(f.last) + "," +
                   std::to_string(f.count) + "," + csvField(f.evidence) + "\r\n";
        }
    }
    return out;
}

std::string json(const std::vector<FlaggedAccount>& accounts) {
    std::string out = "[";
    for (std::size_t i = 0; i < accounts.size(); ++i) {
        out += std::string(i ? ", " : "") + "{\"user\": " + jsonString(accounts[i].user) + ", \"flags\": [";
        const auto& flags = accounts[i].flags;
        for (std::size_t j = 0; j < flags.size(); ++j) {
            const AccountFlag& f = flags[j];
            out += std::string(j ? ", " : "") + "{\"reason\": \"" + flagReasonName(f.reason) + "\", \"first\": \"" +
                   utc(f.first) + "\", \"last\": \"" + utc(f.last) + "\", \"count\": " + std::to_string(f.count) +
                   ", \"evidence\": " + jsonString(f.evidence) + "}";
        }
        out += "]}";
    }
    return out + "]\n";
}

}  // namespace

std::string renderAccountFlags(const std::vector<FlaggedAccount>& accounts, MigrationFormat format) {
    switch (format) {
    case MigrationFormat::Csv:
        return csv(accounts);
    case MigrationFormat::Json:
        return json(accounts);
    case MigrationFormat::Text:
        break;
    }
    return text(accounts);
}

}  // namespace subproxy
