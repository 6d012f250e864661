#!/usr/bin/env python3
"""failed-tests.py RESULTS.trx: after `make test`, names the slowest tests (how close each came to its
timeout is for a person to judge) and each failed test with the first lines of its message, last in
the log, where a CI page that shows only the tail still shows them."""
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}


def seconds(result: ET.Element) -> float:
    h, m, s = (result.get("duration") or "0:0:0").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def name(result: ET.Element) -> str:
    text = (result.get("testName") or "").removeprefix("Conformance.Tests.")
    return text if len(text) <= 110 else text[:109] + "…"


def main(path: str) -> int:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"failed-tests: {path}: {e}", file=sys.stderr)
        return 0
    results = list(root.iterfind(".//t:UnitTestResult", NS))
    slowest = sorted(results, key=seconds, reverse=True)[:8]
    if slowest:
        print("== the slowest tests:", file=sys.stderr)
        for r in slowest:
            print(f"  {seconds(r):6.1f} s  {name(r)}", file=sys.stderr)
    failed = [r for r in results if r.get("outcome") == "Failed"]
    if not failed:
        return 0
    print(f"\n== {len(failed)} failed test(s) ({path}):", file=sys.stderr)
    for r in failed:
        message = r.findtext("t:Output/t:ErrorInfo/t:Message", default="", namespaces=NS).strip()
        lines = message.splitlines()
        print(f"  FAILED {r.get('testName')} ({seconds(r):.1f} s)", file=sys.stderr)
        for line in lines[:12]:
            print(f"    {line[:300]}", file=sys.stderr)
        if len(lines) > 12:
            print(f"    … {len(lines) - 12} more line(s) in the .trx", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
