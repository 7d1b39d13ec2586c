"""Write pip constraints that pin every dependency ``pyproject.toml`` declares to its lowest allowed version.

The ``py310-lowest`` tox environment installs the package and its test tools under these
constraints, so the suite runs on exactly the minimums ``[project].dependencies`` promises (and
those of the extras named with ``--extra``). They are read from ``pyproject.toml`` on every run, so
raising a minimum there is all it takes to test the new one.

Run it as ``python tests/lowest_versions.py OUT [--extra NAME ...]``; it needs ``packaging``, and
``tomli`` before Python 3.11.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the lowest environment runs on 3.10
    import tomli as tomllib

__all__ = ("lowest_versions", "main")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
_LOWER_BOUNDS = (">=", "==", "~=", "===")
"""Operators whose version is the lowest one allowed."""


def lowest_versions(pyproject: dict[str, object], extras: list[str]) -> dict[str, Version]:
    """The lowest allowed version of each dependency that applies to this interpreter.

    Args:
        pyproject: The parsed ``pyproject.toml``.
        extras: Optional-dependency groups to pin as well as ``[project].dependencies``.

    Returns:
        Canonical project names and their lowest versions; a project named twice gets the higher
        of its bounds, the lowest version that satisfies both.

    Raises:
        ValueError: A dependency has no lower bound, or an extra does not exist.
    """
    project = pyproject["project"]
    assert isinstance(project, dict)
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise ValueError(f"no such extras in pyproject.toml: {', '.join(unknown)}")
    lines = [*project.get("dependencies", []), *(line for extra in extras for line in optional[extra])]
    pins: dict[str, Version] = {}
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        bounds = [Version(spec.version) for spec in requirement.specifier if spec.operator in _LOWER_BOUNDS]
        if not bounds:
            raise ValueError(f"{line!r} declares no lower bound (>=, ==, ~=), so it has no lowest version to test")
        name = canonicalize_name(requirement.name)
        pins[name] = max([*bounds, *([pins[name]] if name in pins else [])])
    return dict(sorted(pins.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="the constraints file to write")
    parser.add_argument("--extra", action="append", default=[], help="also pin this extra's dependencies")
    args = parser.parse_args(argv)
    pins = lowest_versions(tomllib.loads(PYPROJECT.read_text(encoding="utf-8")), args.extra)
    groups = ", ".join(["dependencies", *(f"[{extra}]" for extra in args.extra)])
    lines = [f"# The lowest versions pyproject.toml allows: {groups}", *(f"{n}=={v}" for n, v in pins.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
