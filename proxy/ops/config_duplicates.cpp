// libconfig's parser says only "duplicate setting name" and the line.  The name, its path and
// where it was first set come from reading the text as libconfig does: comments and strings
// skipped, a setting being a name followed by '=' or ':', one set of names per group (each
// group in a list has its own).  The first name seen twice in one group is the one libconfig
// stopped at.  Empty when the text holds no duplicate (it did not come from this text).
#include "ops/config_duplicates.h"

#include "ops/config_reader.h"  // quoted()

#include <algorithm>
#include <cctype>
#include <map>
#include <vector>

namespace subproxy::config_detail {

namespace {

struct DuplicateSetting {
    std::string path;  // "upstream.port", "listen.[1].port"
    int firstLine = 0;
};

bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '*'; }

bool isNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '*' || c == '_' || c == '-'; }

// One pass over the text, tracking the line and the groups and lists it is in.
class DuplicateFinder {
public:
    explicit DuplicateFinder(const std::string& text) : text_(text), n_(text.size()) {}
    std::optional<DuplicateSetting> find();

private:
    struct Scope {
        std::string path;                       // "" at the top
        bool list = false;                      // ( ... ): holds unnamed values
        int items = 0;                          // groups seen so far in a list
        std::map<std::string, int> names;       // name -> line first set
    };

    std::size_t skipBlank(std::size_t i);
    std::size_t endOfLine(std::size_t i) const;
    std::size_t skipString(std::size_t i);
    void openScope(char c);
    std::optional<DuplicateSetting> readName(std::size_t& i);

    const std::string& text_;
    const std::size_t n_;
    std::vector<Scope> scopes_ = std::vector<Scope>(1);
    std::string pending_;  // the setting whose value comes next (a group or list opens a scope)
    int line_ = 1;
};

std::optional<DuplicateSetting> DuplicateFinder::find() {
    for (std::size_t i = skipBlank(0); i < n_; i = skipBlank(i)) {
        const char c = text_[i];
        if (c == '"') {
            i = skipString(i);
        } else if (c == '@') {  // @include "file": its settings are not in this text
            i = endOfLine(i);
        } else if (c == '{' || c == '(') {
            openScope(c);
            ++i;
        } else if ((c == '}' || c == ')') && scopes_.size() > 1) {
            scopes_.pop_back();
            ++i;
        } else if (isNameStart(c)) {
            if (auto duplicate = readName(i)) {
                return duplicate;
            }
        } else {
            ++i;  // numbers, '[' ']' (arrays hold only scalars), ';' ','
        }
    }
    return std::nullopt;
}

// Past white space and comments ("#", "//", "/* */"), counting lines.
std::size_t DuplicateFinder::skipBlank(std::size_t i) {
    for (;;) {
        if (i >= n_) {
            return n_;
        }
        while (i < n_ && std::isspace(static_cast<unsigned char>(text_[i]))) {
            line_ += text_[i++] == '\n';
        }
        if (i < n_ && (text_[i] == '#' || text_.compare(i, 2, "//") == 0)) {
            i = endOfLine(i);
        } else if (text_.compare(i, 2, "/*") == 0) {
            const std::size_t end = text_.find("*/", i + 2);
            const std::size_t stop = end == std::string::npos ? n_ : end + 2;
            line_ += static_cast<int>(std::count(text_.begin() + static_cast<long>(i),
                                                 text_.begin() + static_cast<long>(stop), '\n'));
            i = stop;
        } else {
            return i;
        }
    }
}

// The '\n' that ends the line (counted by skipBlank), or the end of the text.
std::size_t DuplicateFinder::endOfLine(std::size_t i) const {
    i = text_.find('\n', i);
    return i == std::string::npos ? n_ : i;
}

// A string value from its opening quote to past its closing one; "\"" inside it is not its end.
std::size_t DuplicateFinder::skipString(std::size_t i) {
    for (++i; i < n_ && text_[i] != '"'; ++i) {
        line_ += text_[i] == '\n';
        if (text_[i] == '\\' && i + 1 < n_) {
            line_ += text_[++i] == '\n';
        }
    }
    return std::min(i + 1, n_);
}

// A group or list: named by the pending setting, or "[N]" as the Nth group of a list.
void DuplicateFinder::openScope(char c) {
    Scope& outer = scopes_.back();
    std::string path = outer.list ? outer.path + ".[" + std::to_string(outer.items++) + "]" : pending_;
    if (!outer.list && !outer.path.empty()) {
        path = outer.path + "." + pending_;
    }
    scopes_.push_back(Scope{path, c == '(', 0, {}});
    pending_.clear();
}

// A name at `i`; `i` moves past it, and past its '=' or ':' when it is a setting's.
std::optional<DuplicateSetting> DuplicateFinder::readName(std::size_t& i) {
    std::size_t end = i;
    while (end < n_ && isNameChar(text_[end])) {
        ++end;
    }
    const std::string name = text_.substr(i, end - i);
    const int at = line_;
    i = skipBlank(end);
    if (i < n_ && (text_[i] == '=' || text_[i] == ':') && !scopes_.back().list) {
        Scope& scope = scopes_.back();
        const auto [it, inserted] = scope.names.emplace(name, at);
        if (!inserted) {
            return DuplicateSetting{scope.path.empty() ? name : scope.path + "." + name, it->second};
        }
        pending_ = name;
        ++i;
    }
    // else: true, false or a word libconfig will refuse itself
    return std::nullopt;
}

}  // namespace

std::optional<std::string> duplicateSettingMessage(const std::string& text) {
    const auto duplicate = DuplicateFinder(text).find();
    if (!duplicate) {
        return std::nullopt;
    }
    return "duplicate setting " + quoted(duplicate->path) + " (already set at line " +
           std::to_string(duplicate->firstLine) + "); remove one of them";
}

}  // namespace subproxy::config_detail
