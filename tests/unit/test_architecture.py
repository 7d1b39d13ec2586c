"""The package's import graph follows the data path: scope -> session -> span -> store -> panel / exporter.

Each module of ``src/litestar_ws_otel`` has a layer below; a module may import only modules of
lower layers (type-only and function-local imports included), so there is no cycle and no import
against the data path. ``docs/architecture.md`` is the map of these layers and names every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import litestar_ws_otel

PACKAGE = "litestar_ws_otel"
PACKAGE_DIR = Path(litestar_ws_otel.__file__).parent
ARCHITECTURE_DOC = Path(__file__).parents[2] / "docs" / "architecture.md"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "reporting", "semconv", "redaction", "export_health", "version", "panel"),  # leaves
    ("session",),  # one connection's record; no OpenTelemetry, no Litestar
    ("statistics",),  # one app's numbers, read from its sessions
    ("session_context", "spans"),  # a session to a span: the context key, attributes and events
    ("live_export",),  # open sessions' new messages as child spans, on a timer
    ("middleware",),  # the producer: scope -> session + span
    ("documents",),  # the store's JSON view of a session
    ("processor",),  # the store
    ("handle", "dispatch", "metrics"),  # the handle of an app; its store and instruments, per provider
    ("provider",),  # where spans and metrics go
    ("panel.access", "panel.stream", "toolbar"),  # readers of the store
    ("panel.routes",),
    ("instrument", "env_config"),  # the set-up wires every layer; the config from OTEL_PYTHON_LITESTAR_WS_*
    ("autoinstrument",),  # the set-up without code: every app the process builds; not imported by __init__
    ("",),  # the package's __init__: public names only
)


def module_name(path: Path, root: Path) -> str:
    """``panel/routes.py`` -> ``panel.routes``; a package's ``__init__.py`` is the package itself."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_imports(path: Path, root: Path, package: str) -> set[str]:
    """Modules of ``package`` that the file at ``path`` imports, wherever the import statement is.

    ``from pkg.panel import routes`` imports the module ``panel.routes``; ``from pkg.spans import
    write_events`` imports ``spans``; ``from pkg import semconv`` imports ``semconv``.
    """
    modules = {module_name(file, root) for file in root.rglob("*.py")}
    own = module_name(path, root)
    package_of_own = own.split(".") if path.name == "__init__.py" else own.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package_of_own[: len(package_of_own) - (node.level - 1)]
                module = ".".join([package, *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if _relative(f"{module}.{alias.name}", package) in modules else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if _in_package(target, package):
                found.update(_with_parent_packages(_relative(target, package)))
    found.discard(own)
    return {name for name in found if name in modules}


def _with_parent_packages(name: str) -> set[str]:
    """``panel.routes`` -> ``{panel, panel.routes}``: importing a module runs its package's ``__init__``.

    The top package is left out: every import of the package runs it, and it only re-exports.
    """
    parts = name.split(".")
    return {".".join(parts[: index + 1]) for index in range(len(parts))} if name else {""}


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def _relative(name: str, package: str) -> str:
    return name[len(package) + 1 :] if name.startswith(f"{package}.") else ""


def back_edges(root: Path, package: str, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import that does not point to a lower layer, and every module no layer names."""
    rank = {module: index for index, layer in enumerate(layers) for module in layer}
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        if module not in rank:
            problems.append(f"{module or '__init__'}: not in any layer")
            continue
        for imported in sorted(package_imports(path, root, package)):
            if imported not in rank:
                continue  # reported as a module of its own
            if rank[imported] >= rank[module]:
                problems.append(
                    f"{module or '__init__'} (layer {rank[module]}) imports {imported or '__init__'} "
                    f"(layer {rank[imported]}): against the data path"
                )
    return problems


def test_the_package_imports_only_down_the_data_path() -> None:
    assert back_edges(PACKAGE_DIR, PACKAGE, LAYERS) == []


def test_every_layer_names_a_module_that_exists() -> None:
    modules = {module_name(path, PACKAGE_DIR) for path in PACKAGE_DIR.rglob("*.py")}
    assert {module for layer in LAYERS for module in layer} == modules


def test_the_architecture_note_names_every_module() -> None:
    text = ARCHITECTURE_DOC.read_text(encoding="utf-8")
    for path in PACKAGE_DIR.rglob("*.py"):
        assert str(path.relative_to(PACKAGE_DIR)) in text, path


TYPE_ONLY = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    {}\n"


@pytest.fixture
def tiny_package(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from tiny.top import run\n")
    (root / "base.py").write_text("X = 1\n")
    (root / "top.py").write_text("from tiny import base\n\ndef run():\n    from tiny.sub import leaf\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import base\n"
    )
    return root


TINY_LAYERS = (("base", "sub"), ("sub.leaf",), ("top",), ("",))


def test_the_check_passes_a_package_that_imports_downwards(tiny_package: Path) -> None:
    assert package_imports(tiny_package / "top.py", tiny_package, "tiny") == {"base", "sub.leaf", "sub"}
    assert package_imports(tiny_package / "sub" / "leaf.py", tiny_package, "tiny") == {"base"}
    assert back_edges(tiny_package, "tiny", TINY_LAYERS) == []


def test_the_check_reports_a_back_edge_even_inside_a_function_or_type_check(tiny_package: Path) -> None:
    (tiny_package / "base.py").write_text("def late():\n    from tiny.top import run\n")
    assert back_edges(tiny_package, "tiny", TINY_LAYERS) == [
        "base (layer 0) imports top (layer 2): against the data path"
    ]
    (tiny_package / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import leaf\n"
    )
    assert back_edges(tiny_package, "tiny", TINY_LAYERS) == [
        "base (layer 0) imports sub (layer 0): against the data path",
        "base (layer 0) imports sub.leaf (layer 1): against the data path",
    ]


def test_the_check_reports_an_import_within_a_layer_and_an_unplaced_module(tiny_package: Path) -> None:
    """Two modules of one layer may not import each other: that is how a cycle starts."""
    (tiny_package / "base.py").write_text("import tiny.sub\n")
    (tiny_package / "extra.py").write_text("")
    assert back_edges(tiny_package, "tiny", TINY_LAYERS) == [
        "base (layer 0) imports sub (layer 0): against the data path",
        "extra: not in any layer",
    ]
