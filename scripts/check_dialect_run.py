"""CI guard: fail unless a pytest JUnit report shows the suite really ran on DIALECT.

Usage: check_dialect_run.py REPORT.xml DIALECT
The suite's `test_suite_database_dialect` records the dialect it ran on as a JUnit
property; a skipped or missing test, or another dialect, fails the run.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(report: str, dialect: str) -> int:
    root = ET.parse(report).getroot()
    cases = list(root.iter("testcase"))
    probe = [c for c in cases if c.get("name") == "test_suite_database_dialect"]
    if not probe:
        print(f"no dialect probe in {report}: the suite did not run", file=sys.stderr)
        return 1
    case = probe[0]
    if case.find("skipped") is not None or case.find("failure") is not None or case.find("error") is not None:
        print("the dialect probe did not pass", file=sys.stderr)
        return 1
    seen = {p.get("name"): p.get("value") for p in case.iter("property")}
    if seen.get("dialect") != dialect:
        print(f"the suite ran on {seen.get('dialect')!r}, expected {dialect!r}", file=sys.stderr)
        return 1
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    print(f"{len(cases)} tests ran on {dialect} ({skipped} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
