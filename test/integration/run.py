#!/usr/bin/env python3
"""Runs the integration tests (test/integration/test_*.py) and writes "passed failed skipped"
to the file named by --counts, so test/run-all.sh can add them to the unit-test counts."""
import argparse
import fnmatch
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

parser = argparse.ArgumentParser()
parser.add_argument("--counts", required=True)
parser.add_argument("pattern", nargs="?", default="test_*.py")
parser.add_argument("--exclude", default=None,
                    help="skip test files matching this pattern (run elsewhere, e.g. in parallel)")
args = parser.parse_args()



class CountingResult(unittest.TextTestResult):
    """Counts passes directly: a class-level skip (setUpClass raising SkipTest) is one skip
    entry but no testsRun, so passes cannot be derived by subtraction."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


suite = unittest.defaultTestLoader.discover(HERE, pattern=args.pattern, top_level_dir=HERE)
if args.exclude:
    def without(s):
        """The suite minus the tests whose module file matches --exclude."""
        kept = unittest.TestSuite()
        for t in s:
            if isinstance(t, unittest.TestSuite):
                kept.addTest(without(t))
            elif not fnmatch.fnmatch(type(t).__module__ + ".py", args.exclude):
                kept.addTest(t)
        return kept
    suite = without(suite)
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=CountingResult).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
skipped = len(result.skipped)
passed = result.passed
with open(args.counts, "w") as f:
    f.write("%d %d %d\n" % (passed, failed, skipped))
for test, reason in result.skipped:
    print("skipped: %s: %s" % (test.id(), reason))
sys.exit(0 if failed == 0 else 1)
