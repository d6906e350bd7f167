"""The import rules of docs/architecture.md, read from the source (issue 14's acceptance):
no import cycle inside imitate/ (imports inside functions count: they run too), no module of
imitate/ but cli.py imports agents/ or envs/, and nothing outside cli.py imports cli.py
(tests and scripts may call its entry points ``main`` and ``parse``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = {"main", "parse"}


def _imports(path: Path) -> set[tuple[str, str | None]]:
    """(module, name) of every absolute import in ``path``, at any depth, except those under
    ``if TYPE_CHECKING:`` (they never run); ``name`` is None for ``import module``."""
    found: set[tuple[str, str | None]] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update((alias.name, None) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.update((child.module, alias.name) for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _library() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / "imitate").rglob("*.py"))}


def test_no_import_cycle_inside_imitate() -> None:
    modules = _library()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for module, attr in _imports(path):
            if attr is not None and f"{module}.{attr}" in modules:
                targets.add(f"{module}.{attr}")  # `from imitate import validate`
            elif module in modules:
                targets.add(module)
        graph[name] = targets - {name}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert cycles == []


def test_only_the_cli_imports_agents_or_envs() -> None:
    offenders = sorted(
        f"{name} imports {module}"
        for name, path in _library().items()
        if name != "imitate.cli"
        for module, _ in _imports(path)
        if module.split(".")[0] in ("agents", "envs")
    )
    assert offenders == []


def test_nothing_outside_the_cli_imports_it() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if ".venv" in path.parts or path == ROOT / "imitate" / "cli.py":
            continue
        for module, attr in _imports(path):
            if module == "imitate.cli" or (module == "imitate" and attr == "cli"):
                script = path.parts[len(ROOT.parts)] in ("tests", "docs")
                if not (script and attr in ENTRY_POINTS):
                    offenders.append(f"{path.relative_to(ROOT)}: {module} {attr}")
    assert offenders == []
