"""``tests/lowest_versions.py``: the constraints the ``py310-lowest`` tox environment installs under."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.lowest_versions import PYPROJECT, lowest_versions, main

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def project(dependencies: list[str], **extras: list[str]) -> dict[str, object]:
    return {"project": {"dependencies": dependencies, "optional-dependencies": extras}}


def test_every_runtime_dependency_of_pyproject_is_pinned_at_its_declared_minimum() -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    pins = lowest_versions(pyproject, [])
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            (bound,) = (spec for spec in requirement.specifier if spec.operator == ">=")
            assert pins[canonicalize_name(requirement.name)] == Version(bound.version)


def test_a_project_named_twice_gets_the_higher_bound_and_markers_apply() -> None:
    pins = lowest_versions(
        project(["Litestar>=2.15,<3", "never>=1; python_version < '3'"], toolbar=["litestar>=2.20", "extra_tool~=1.1"]),
        ["toolbar"],
    )
    assert pins == {"extra-tool": Version("1.1"), "litestar": Version("2.20")}


def test_a_dependency_without_a_lower_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="declares no lower bound"):
        lowest_versions(project(["litestar<3"]), [])


def test_an_unknown_extra_is_refused() -> None:
    with pytest.raises(ValueError, match="no such extras in pyproject.toml: nope"):
        lowest_versions(project([]), ["nope"])


def test_main_writes_pip_constraints(tmp_path: Path) -> None:
    out = tmp_path / "lowest.txt"
    main([str(out), "--extra", "toolbar"])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    assert any(line.startswith("litestar==") for line in lines)
    assert all("==" in line for line in lines[1:])
