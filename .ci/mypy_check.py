"""mypy without new errors: run mypy on the package and compare its errors with the recorded baseline.

mypy started non-strict on a code base that already had errors; they are recorded in ``.ci/mypy-baseline.txt``
(one per line, ``path: message [code]``, line numbers dropped so that edits elsewhere in a file do not matter).
An error that is not in the baseline (or more copies of one than recorded) fails the check. Errors that went away
are reported; ``python .ci/mypy_check.py --update`` rewrites the baseline (only ever shrink it).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
LINE = re.compile(r"^(?P<path>[^:]+):\d+(?::\d+)?: error: (?P<msg>.*)$")


def current_errors() -> Counter[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty", "lightning_pose"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):
        sys.exit(f"mypy_check: mypy failed to run (exit {proc.returncode}):\n{proc.stderr or proc.stdout}")
    errors: Counter[str] = Counter()
    for line in proc.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            errors[f"{m['path']}: {m['msg']}"] += 1
    return errors


def main(argv: list[str]) -> int:
    errors = current_errors()
    if "--update" in argv:
        BASELINE.write_text("".join(f"{e}\n" for e in sorted(errors.elements())))
        print(f"mypy_check: baseline rewritten with {sum(errors.values())} errors")
        return 0
    baseline = Counter(BASELINE.read_text().splitlines()) if BASELINE.exists() else Counter()
    new = errors - baseline
    fixed = baseline - errors
    print(
        f"mypy_check: {sum(errors.values())} errors, baseline {sum(baseline.values())}, "
        f"new {sum(new.values())}, fixed {sum(fixed.values())}"
    )
    for e in sorted(new.elements()):
        print(f"  new: {e}")
    if fixed:
        print("  (errors fixed since the baseline: run `python .ci/mypy_check.py --update` to shrink it)")
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
