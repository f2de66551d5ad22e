#!/usr/bin/env python3
"""Reads a googletest JSON report (--gtest_output=json:FILE) and fails unless every test ran and passed:
on the GPU machine a skipped CUDA test means the device was not used, which is a failure there.

    python3 tools/gpu/check_gtest.py REPORT.json [--allow-skip REGEX]

Prints one line per skipped or failed test and a total; exit 0 only with > 0 tests, no failure and no skip
(other than names matching --allow-skip).
"""
import argparse
import json
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--allow-skip")
    a = ap.parse_args()
    try:
        with open(a.report) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_gtest: {a.report}: no readable report ({e})")
        return 1
    ran = skipped = failed = 0
    for suite in r.get("testsuites", []):
        for t in suite.get("testsuite", []):
            name = f"{suite['name']}.{t['name']}"
            if t.get("result") == "SKIPPED" or t.get("status") == "NOTRUN":
                if a.allow_skip and re.search(a.allow_skip, name):
                    continue
                skipped += 1
                print(f"SKIPPED {name}")
            elif t.get("failures"):
                failed += 1
                print(f"FAILED  {name}: {t['failures'][0].get('failure', '')[:300]}")
            else:
                ran += 1
    print(f"check_gtest: {a.report}: {ran} passed, {failed} failed, {skipped} skipped")
    return 0 if ran > 0 and failed == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
