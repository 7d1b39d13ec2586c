"""The mutation score of each module mutmut mutated, read from the results ``mutmut run`` left in ``mutants/``.

Run from the project root after ``mutmut run`` (``tox -e mutation`` runs both)::

    python tests/mutation_report.py [--survivors] [--fail-under 90] [--module-fail-under 85]

A mutant counts as killed when a test failed on it, it timed out, or the type checker refused it;
a survivor, or a mutant no unit test reaches ("no tests"), counts against the score. A survivor
listed in ``tests/mutation_equivalents.toml`` (judged equivalent: no test can tell it from the
code) is left out of the score while the line it changes is still the one listed there. The
thresholds apply to that score; the raw one is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")

KILLED = frozenset({1, 3, 24, -24, 36, 37, 152, 255})
"""mutmut's exit codes of a detected mutant: a failing test, a pytest error, a timeout, the type checker."""
STATUS = {0: "survived", 5: "no tests", 33: "no tests"}
NOT_RUN = frozenset({None, 34})
"""Not checked (an interrupted run) or skipped: left out of every count."""


class Score(NamedTuple):
    module: str
    killed: int
    total: int
    equivalent: int

    @property
    def raw(self) -> float:
        return percent(self.killed, self.total)

    @property
    def score(self) -> float:
        return percent(self.killed, self.total - self.equivalent)


def percent(killed: int, total: int) -> float:
    return 100.0 * killed / total if total else 100.0


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


def mutated_line(name: str, module: str) -> str:
    """What the mutant changes, as the equivalents file writes it: the new line, or ``-`` and a removed one."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=Path(module)).splitlines()
    added = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
    removed = [line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---")]
    return " | ".join(added) if added else "-" + " | ".join(removed)


def judged_equivalent() -> dict[str, dict[str, str]]:
    return {entry["mutant"]: entry for entry in tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))["equivalent"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every mutant that was not killed")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 if the overall score is lower")
    parser.add_argument("--module-fail-under", type=float, default=0.0, help="exit 1 if a module's score is lower")
    args = parser.parse_args(argv)

    equivalents = judged_equivalent()
    scores: list[Score] = []
    missed: list[tuple[str, str]] = []
    stale: list[str] = []
    for module in mutated_modules(ROOT):
        codes = {name: code for name, code in exit_codes(ROOT, module).items() if code not in NOT_RUN}
        killed = sum(code in KILLED for code in codes.values())
        equivalent = 0
        for name, code in codes.items():
            if code in KILLED:
                continue
            entry = equivalents.get(name)
            if entry is not None and code == 0 and mutated_line(name, module) == entry["line"]:
                equivalent += 1
                continue
            if entry is not None:
                stale.append(name)
            missed.append((name, STATUS.get(code, "suspicious")))
        scores.append(Score(Path(module).name, killed, len(codes), equivalent))

    width = max(len(score.module) for score in scores)
    print(f"{'module':<{width}}  {'killed':>6}  {'total':>5}  {'raw':>6}  {'equiv.':>6}  {'score':>6}")
    for s in scores:
        print(f"{s.module:<{width}}  {s.killed:>6}  {s.total:>5}  {s.raw:5.1f}%  {s.equivalent:>6}  {s.score:5.1f}%")
    overall = Score(
        "overall", sum(s.killed for s in scores), sum(s.total for s in scores), sum(s.equivalent for s in scores)
    )
    print(
        f"{overall.module:<{width}}  {overall.killed:>6}  {overall.total:>5}  {overall.raw:5.1f}%"
        f"  {overall.equivalent:>6}  {overall.score:5.1f}%"
    )
    print(f"{len(missed)} not killed and not judged equivalent")
    if args.survivors:
        for name, status in missed:
            print(f"    {name}: {status}")
    for name in stale:
        print(f"stale entry in {EQUIVALENTS.name} (the mutant changed or was killed): {name}")

    if not overall.total:
        print('no results: run "mutmut run" first')
        return 1
    failing = [s.module for s in scores if s.total and s.score < args.module_fail_under]
    if failing:
        print(f"under {args.module_fail_under:g}%: {', '.join(failing)}")
    return 1 if failing or overall.score < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
