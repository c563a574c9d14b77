#!/usr/bin/env python3
"""Files and functions over the size the layout asks for (issue 10: files under ~400 lines,
functions under ~60), for a reviewer.  Run from the top of the tree:

    test/tools/sizes.py [--file-lines 400] [--function-lines 60]

A rough reader, not a parser: a definition is a line at column 0 that opens a body with '{' at
its end (its parameters may run over several lines first) and ends at the next '}' at column
0.  Namespaces, classes, structs, enums and initialiser tables are not functions.  Prints the
longest first; exits 0 whatever it finds (the sizes are a guide, not a gate).
"""
import argparse
import glob
import re

NOT_FUNCTIONS = re.compile(r'^(namespace|class|struct|enum|union|extern|template\s*<[^>]*>\s*(class|struct))\b')
# Column 0, not a preprocessor line or comment, and looks like the start of a declaration.
DEFINITION_START = re.compile(r'^[A-Za-z_~][^;]*$')


def sources():
    files = set(glob.glob('proxy/**/*.cpp', recursive=True) + glob.glob('proxy/**/*.h', recursive=True) +
                glob.glob('sasl/*.cpp') + glob.glob('sasl/*.h'))
    return sorted(files)


def long_functions(path, limit):
    lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
    found = []
    start = None  # (index, first line) of the definition being read
    for i, line in enumerate(lines):
        if start is None:
            if DEFINITION_START.match(line) and not NOT_FUNCTIONS.match(line) and '=' not in line.split('(')[0]:
                # The signature ends at the first line ending in '{' (same line or a few later).
                for j in range(i, min(i + 6, len(lines))):
                    if lines[j].rstrip().endswith('{') and '(' in ''.join(lines[i:j + 1]):
                        start = (i, line)
                        break
                    if lines[j].rstrip().endswith(';') or (j > i and lines[j][:1] not in (' ', '\t')):
                        break
        elif line.startswith('}'):
            length = i - start[0] + 1
            if length > limit:
                found.append((length, path, start[0] + 1, start[1].strip()))
            start = None
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--file-lines', type=int, default=400)
    parser.add_argument('--function-lines', type=int, default=60)
    args = parser.parse_args()
    big_files = []
    functions = []
    for path in sources():
        with open(path, encoding='utf-8', errors='replace') as f:
            count = sum(1 for _ in f)
        if count > args.file_lines:
            big_files.append((count, path))
        if path.endswith('.cpp'):
            functions += long_functions(path, args.function_lines)
    print('files over %d lines:' % args.file_lines)
    for count, path in sorted(big_files, reverse=True):
        print('%5d %s' % (count, path))
    print('functions over %d lines:' % args.function_lines)
    for length, path, line, text in sorted(functions, reverse=True):
        print('%5d %s:%d %s' % (length, path, line, text[:80]))


if __name__ == '__main__':
    main()
