"""The mutation score of each module mutmut mutated, read from the results ``mutmut run`` left in ``mutants/``.

Run from the project root after ``mutmut run`` (``tox -e mutation`` runs both)::

    python tests/mutation_report.py [--survivors] [--fail-under 90] [--module-fail-under 85]

A mutant counts as killed when a test failed on it, it timed out, or the type checker refused it;
a survivor, or a mutant no unit test reaches ("no tests"), counts against the score. Modules
without mutants (only constants, which mutmut does not mutate) are listed and left out of the total.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

KILLED = frozenset({1, 3, 24, -24, 36, 37, 152, 255})
"""mutmut's exit codes of a detected mutant: a failing test, a pytest error, a timeout, the type checker."""
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def mutated_modules(root: Path) -> list[str]:
    """The files ``[tool.mutmut] only_mutate`` names, in its order."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    return list(config["only_mutate"])


def exit_codes(root: Path, module: str) -> dict[str, int | None]:
    """Each mutant's exit code, by mutant name; empty if mutmut left no results for the module."""
    meta = root / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {}
    return dict(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])


def percent(killed: int, total: int) -> float:
    return 100.0 * killed / total if total else 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every mutant that was not killed")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 if the overall score is lower")
    parser.add_argument("--module-fail-under", type=float, default=0.0, help="exit 1 if a module's score is lower")
    args = parser.parse_args(argv)

    rows: list[tuple[str, int, int]] = []
    missed: list[tuple[str, str]] = []
    unchecked = 0
    for module in mutated_modules(ROOT):
        codes = exit_codes(ROOT, module)
        checked = {name: code for name, code in codes.items() if code is not None and code != 34}
        unchecked += len(codes) - len(checked)
        killed = sum(code in KILLED for code in checked.values())
        rows.append((Path(module).name, killed, len(checked)))
        missed += [(name, STATUS.get(code, "suspicious")) for name, code in checked.items() if code not in KILLED]

    width = max(len(name) for name, _, _ in rows)
    print(f"{'module':<{width}}  {'killed':>6}  {'total':>5}  {'score':>6}")
    for name, killed, total in rows:
        score = f"{percent(killed, total):5.1f}%" if total else "     -"
        print(f"{name:<{width}}  {killed:>6}  {total:>5}  {score}")
    all_killed, all_total = sum(row[1] for row in rows), sum(row[2] for row in rows)
    print(f"{'overall':<{width}}  {all_killed:>6}  {all_total:>5}  {percent(all_killed, all_total):5.1f}%")
    if unchecked:
        print(f"{unchecked} mutants not checked or skipped (left out)")
    if args.survivors:
        for status, count in sorted(Counter(status for _, status in missed).items()):
            print(f"{count} {status}")
        for name, status in missed:
            print(f"    {name}: {status}")

    failing = [name for name, killed, total in rows if total and percent(killed, total) < args.module_fail_under]
    if failing:
        print(f"under {args.module_fail_under:g}%: {', '.join(failing)}")
    if not all_total:
        print('no results: run "mutmut run" first')
        return 1
    return 1 if failing or percent(all_killed, all_total) < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
