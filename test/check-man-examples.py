#!/usr/bin/env python3
"""Every configuration key has an example line in subproxy.conf(5).

The keys are taken from the configuration reader itself: every r.checkKeys(GROUP, {...}) list
in proxy/ops/config*.cpp (the lists of accepted keys, so a new key cannot be missed).  The group a
list belongs to comes from the reader function around it: "each entry of 'X'" (entries of the
list X), "the keys of 'X.Y'" (a nested group), r.optional(root, "X", ...) right before it, or
the function's name (readTls -> tls).
The examples are the .EX/.EE blocks of man/subproxy.conf.5, read as libconfig: nested groups
and lists give each key its full name ("dnsbl.zones.weight").

Prints the keys without an example and exits 1; exits 0 when there are none.
Usage: test/check-man-examples.py [REPO]
"""
import glob
import os
import re
import sys


def reader_keys(repo):
    """{"listen.address", "tls.cert", "hostname", ...} from the checkKeys lists."""
    keys = set()
    groups = set()
    for path in sorted(glob.glob(os.path.join(repo, "proxy", "ops", "config*.cpp"))):
        text = open(path).read()
        for m in re.finditer(r"checkKeys\((\w+),\s*\{(.*?)\}\)", text, re.S):
            names = re.findall(r'"(\w+)"', m.group(2))
            before = text[:m.start()]
            func = list(re.finditer(r"^\S.*\bread(\w+)\(", before, re.M))
            body = before[func[-1].start():] if func else before
            if m.group(1) == "root":
                group = ""
                groups.update(names)
            elif re.search(r"each entry of '([\w.]+)'", body):
                group = re.findall(r"each entry of '([\w.]+)'", body)[-1]
            elif re.search(r"the keys of '([\w.]+)'", body):
                group = re.findall(r"the keys of '([\w.]+)'", body)[-1]   # a nested group
            elif re.search(r'r\.optional\(root, "(\w+)"', body):
                group = re.findall(r'r\.optional\(root, "(\w+)"', body)[-1]
            elif func:
                group = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", func[-1].group(1)).lower()  # readClientName -> client_name
            else:
                raise SystemExit("%s: cannot tell the group of checkKeys at offset %d" % (path, m.start()))
            for name in names:
                keys.add(group + "." + name if group else name)
    # Every group derived above must be a real top-level key (catches a wrong guess).
    for key in keys:
        top = key.split(".")[0]
        if "." in key and top not in groups:
            raise SystemExit("derived group %r is not a top-level key (checkKeys of the root)" % top)
    return keys


def example_keys(man):
    """Full names of the settings written in the page's .EX blocks."""
    text = open(man).read().replace("\\-", "-").replace("\\e", "\\")
    found = set()
    for block in re.findall(r"^\.EX\n(.*?)^\.EE$", text, re.S | re.M):
        block = re.sub(r'"(?:[^"\\]|\\.)*"', '""', block)           # strings may hold anything
        block = re.sub(r"(#|//).*", "", block)                       # comments
        stack, pending = [], None
        for tok in re.findall(r"[A-Za-z_]\w*\s*[=:](?!:)|[{}()]", block):
            if tok in "{(":
                stack.append(pending)
                pending = None
            elif tok in "})":
                if stack:
                    stack.pop()
                pending = None
            else:
                name = re.match(r"\w+", tok).group(0)
                found.add(".".join([s for s in stack if s] + [name]))
                pending = name
    return found


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    keys = reader_keys(repo)
    examples = example_keys(os.path.join(repo, "man", "subproxy.conf.5"))
    missing = sorted(keys - examples)
    for key in missing:
        print("subproxy.conf.5: no example line for %s" % key)
    print("%d keys, %d with an example line, %d without" % (len(keys), len(keys) - len(missing), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
