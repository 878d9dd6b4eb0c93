#!/usr/bin/env python3
"""Test results for CI, from Bazel's own records rather than its console summary.

  count_results.py collect DIR BEP_JSON BAZEL_EXIT   after one `bazel test` (tools/test.sh)
  count_results.py count ROOT                        over every DIR under ROOT (.ci/run)

`collect` copies each test's test.xml out of bazel-testlogs (the next config's run would
replace it) and records Bazel's verdict next to it, in DIR/results.json. The list of tests
comes from the build event file, not from a walk of bazel-testlogs, which keeps the XML of
tests that were deleted or not run this time.

`count` prints one line, "N passed, N failed", and exits 1 if anything failed. A test case
is one <testcase> of gtest's XML. Bazel's verdict is also needed: a test whose cases all
passed can still fail (a leak found by LeakSanitizer at exit), and one that crashed or timed
out leaves no XML of its own; either counts as one more failure. A step that failed
with no test to blame (a library that does not compile, a failed setup) counts as one too, as
does a configuration that ran but has no results.json (collect itself failed).
"""
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlparse

RESULTS = "results.json"
OK_EXITS = (0, 4)  # 4: nothing to test, which is not a failure


def collect(out_dir, bep_path, bazel_exit):
    results = {}  # (label, run, shard) -> result of the latest attempt
    test_targets, built = set(), {}
    events = []
    if os.path.exists(bep_path):
        with open(bep_path) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass  # cut short (Bazel killed mid-run): its tests count by what is left

    for event in events:
        kind, eid = next(iter(event["id"].items()))
        if kind == "targetConfigured" and "testSize" in event.get("configured", {}):
            test_targets.add(eid["label"])
        elif kind == "targetCompleted":
            built[eid["label"]] = event.get("completed", {}).get("success", False)
        elif kind == "testResult":
            key = (eid["label"], eid.get("run", 1), eid.get("shard", 1))
            if key in results and results[key]["attempt"] > eid.get("attempt", 1):
                continue
            outputs = {o["name"]: o["uri"] for o in event["testResult"].get("testActionOutput", [])}
            results[key] = {
                "label": key[0], "attempt": eid.get("attempt", 1),
                "status": event["testResult"].get("status", "NO_STATUS"),
                "xml": copy_xml(outputs.get("test.xml"), out_dir, key),
            }
    tested = {key[0] for key in results}
    for label in sorted(test_targets - tested):
        if not built.get(label, False):  # failed to build or analyse: it never ran
            results[(label, 0, 0)] = {"label": label, "status": "FAILED_TO_BUILD", "xml": None}
    with open(os.path.join(out_dir, RESULTS), "w") as f:
        json.dump({"bazel_exit": bazel_exit, "tests": list(results.values())}, f, indent=1)


def copy_xml(uri, out_dir, key):
    src = unquote(urlparse(uri).path) if uri else None
    if not src or not os.path.exists(src):
        return None
    label, run, shard = key
    rel = os.path.join(label.lstrip("@").replace("//", "/").replace(":", "/").lstrip("/"),
                       "run%d_shard%d.xml" % (run, shard))
    os.makedirs(os.path.dirname(os.path.join(out_dir, rel)), exist_ok=True)
    shutil.copyfile(src, os.path.join(out_dir, rel))
    return rel


def count_xml(path):
    """(passed, failed, all) test cases, or None when the XML is missing or truncated."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    passed = failed = cases = 0
    for case in root.iter("testcase"):
        cases += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None and case.get("status", "run") == "run":
            passed += 1
    return passed, failed, cases


def count(root):
    passed = failed = 0
    for dirpath, _, files in sorted(os.walk(root)):
        if RESULTS not in files:
            if "bep.json" in files:  # a config that ran but whose results were never recorded
                print("FAILED (%s): no results recorded" % os.path.relpath(dirpath, root))
                failed += 1
            continue
        with open(os.path.join(dirpath, RESULTS)) as f:
            record = json.load(f)
        config_failed = 0
        for test in record["tests"]:
            ok = test["status"] in ("PASSED", "FLAKY")
            cases = count_xml(os.path.join(dirpath, test["xml"])) if test["xml"] else None
            p, fl, n = cases if cases else (0, 0, 0)
            if not ok and fl == 0:
                fl = 1
            elif ok and n == 0:
                p = 1  # a passing test that wrote no test cases still passed (all skipped: none)
            passed += p
            config_failed += fl
            if not ok:
                print("FAILED (%s): %s %s" % (os.path.relpath(dirpath, root), test["label"], test["status"]))
        if config_failed == 0 and record["bazel_exit"] not in OK_EXITS:
            print("FAILED (%s): exit status %d, and no failed test to show for it"
                  % (os.path.relpath(dirpath, root), record["bazel_exit"]))
            config_failed = 1
        failed += config_failed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "collect":
        collect(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 3 and sys.argv[1] == "count":
        sys.exit(count(sys.argv[2]))
    else:
        sys.exit(__doc__)
