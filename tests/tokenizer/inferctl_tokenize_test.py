#!/usr/bin/env python3
"""Runs the real `inferctl tokenize` / `detokenize` and compares with the reference ids from tokenizers."""
import argparse
import json
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inferctl", required=True)
    ap.add_argument("--ref", required=True)
    args = ap.parse_args()
    corpus = json.load(open(args.ref + "/corpus.json"))
    manifest = json.load(open(args.ref + "/manifest.json"))
    failures = 0
    checked = 0
    for t in manifest["tokenizers"]:
        exp = json.load(open("%s/expected_%s.json" % (args.ref, t["name"])))["items"]
        picks = [i for i, c in enumerate(corpus) if c["name"].startswith(("english", "chinese", "special_1", "mixed_1",
                                                                          "whitespace_9", "emoji"))][:5]
        picks.append(next(i for i, c in enumerate(corpus) if c["name"].startswith("long")))
        # One process per call: a batch of items keeps the test fast.
        for i in picks:
            raw = bytes.fromhex(corpus[i]["hex"])
            for no_bos in (False, True):
                cmd = [args.inferctl, "tokenize", "--model", t["dir"]] + (["--no-bos"] if no_bos else [])
                r = subprocess.run(cmd, input=raw, capture_output=True)
                want = exp[i]["ids"] if no_bos else exp[i]["ids_special"]
                got = json.loads(r.stdout) if r.returncode == 0 else None
                if got != want:
                    failures += 1
                    print("FAIL tokenize %s %s no_bos=%s: rc=%d %s" % (t["name"], corpus[i]["name"], no_bos,
                                                                      r.returncode, r.stderr.decode()[:200]))
                checked += 1
            r = subprocess.run([args.inferctl, "detokenize", "--model", t["dir"]],
                               input=json.dumps(exp[i]["ids"]).encode(), capture_output=True)
            if r.returncode != 0 or r.stdout != bytes.fromhex(exp[i]["decode"]):
                failures += 1
                print("FAIL detokenize %s %s" % (t["name"], corpus[i]["name"]))
            checked += 1
    # --text, errors and invalid UTF-8.
    v3 = manifest["tokenizers"][0]["dir"]
    r = subprocess.run([args.inferctl, "tokenize", "--model", v3, "--text", "Hello world"], capture_output=True)
    if json.loads(r.stdout) != [0, 19923, 2058]:
        failures += 1
        print("FAIL --text:", r.stdout, r.stderr)
    r = subprocess.run([args.inferctl, "tokenize", "--model", v3], input=b"bad \xff utf8", capture_output=True)
    if r.returncode != 1 or b"invalid UTF-8" not in r.stderr:
        failures += 1
        print("FAIL invalid utf-8 not rejected:", r.returncode, r.stderr)
    r = subprocess.run([args.inferctl, "tokenize", "--model", "/nonexistent", "--text", "x"], capture_output=True)
    if r.returncode != 1 or b"inferctl: error:" not in r.stderr:
        failures += 1
        print("FAIL missing dir:", r.returncode, r.stderr)
    r = subprocess.run([args.inferctl, "detokenize", "--model", v3, "--ids", "[1, \"x\"]"], capture_output=True)
    if r.returncode != 1 or b"ids[1]" not in r.stderr:
        failures += 1
        print("FAIL bad ids:", r.returncode, r.stderr)
    print("inferctl: %d comparisons, %d failures" % (checked + 4, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
