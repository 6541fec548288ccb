"""The layers of docs/architecture.md hold in the code: each crmcore module imports (at run
time, outside ``TYPE_CHECKING`` and function bodies) only modules of its own layer or of the
layers below, and no runtime imports form a cycle.

Importing a module first imports its package's ``__init__``, so a package facade may import at
run time nothing above the lowest layer of its modules, and the cycle check counts the edge
from each module to what its package's ``__init__`` imports from outside the package (the root
package ``crmcore``, the public face, excepted)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Layers, lowest first, by module name prefix (the longest prefix that matches wins). The same
#: table stands in docs/architecture.md; a test keeps the two in step.
LAYERS: dict[str, int] = {
    # 0 values: what every part passes around
    "crmcore.errors": 0, "crmcore.actors": 0, "crmcore.money": 0, "crmcore.records": 0,
    "crmcore.signals": 0, "crmcore.hookspecs": 0, "crmcore.storage.types": 0,
    "crmcore.security.predicate": 0, "crmcore.lazy": 0,
    # 1 declarations: entities, fields, settings, plugins, schemas
    "crmcore.fields": 1, "crmcore.registry": 1, "crmcore.validation": 1, "crmcore.schemas": 1,
    "crmcore.settings": 1, "crmcore.plugins": 1,
    # 2 services: storage and the unit of work, security, workflow, queries, jobs, transfer
    "crmcore.storage": 2, "crmcore.security": 2, "crmcore.workflow": 2, "crmcore.query": 2,
    "crmcore.selects": 2, "crmcore.jobs": 2, "crmcore.transfer": 2, "crmcore.calendars": 2,
    "crmcore.merge": 2,
    # 3 the app, which assembles the services from the plugins
    "crmcore.app": 3,
    # 4 the edges: the package's public face, the command line, builtin plugins, tools
    "crmcore": 4, "crmcore.cli": 4, "crmcore.builtin": 4, "crmcore.demo": 4,
    "crmcore.testing": 4, "crmcore.conformance": 4, "crmcore.docgen": 4, "crmcore.migrations": 4,
}
NAMES = ("values", "declarations", "services", "app", "edges")


def layer_of(module: str) -> int:
    if module == "crmcore":
        return LAYERS[module]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):  # the package itself stands for itself alone
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"module {module} has no layer: add it to LAYERS and docs/architecture.md")


def modules() -> dict[str, Path]:
    found = {}
    for path in (SOURCE / "crmcore").rglob("*.py"):
        if "versions" in path.parts:
            continue
        name = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def runtime_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The crmcore modules *name* imports when it is imported."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in known else base)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "orelse", []))
                visit(getattr(node, "finalbody", []))

    visit(ast.parse(path.read_text()).body)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: runtime_imports(name, path, known) for name, path in found.items()}


def packages_of(name: str, known: set[str]) -> list[str]:
    """The packages (below the root) whose ``__init__`` runs when *name* is imported."""
    parts = name.split(".")
    return [p for p in (".".join(parts[:end]) for end in range(2, len(parts))) if p in known]


def test_no_module_imports_a_layer_above_its_own():
    wrong = [
        f"{name} ({NAMES[layer_of(name)]}) imports {target} ({NAMES[layer_of(target)]})"
        for name, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert wrong == []


def test_no_package_facade_imports_above_its_lowest_module():
    edges = graph()
    wrong = []
    for package in sorted(edges):
        inside = [m for m in edges if m.startswith(package + ".")]
        if package == "crmcore" or not inside:
            continue
        lowest = min(layer_of(m) for m in inside)
        wrong += [
            f"{package} ({NAMES[layer_of(package)]} facade over a {NAMES[lowest]} module) imports {target} "
            f"({NAMES[layer_of(target)]}): import it lazily (crmcore.lazy)"
            for target in sorted(edges[package]) if layer_of(target) > lowest
        ]
    assert wrong == []


def test_runtime_imports_form_no_cycle():
    direct = graph()
    known = set(direct)
    edges = {  # importing a module also imports what its packages' __init__ import from outside them
        name: targets | {t for p in packages_of(name, known) for t in direct[p] if not t.startswith(p + ".")}
        for name, targets in direct.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_architecture_page_lists_the_same_layers():
    text = ARCHITECTURE.read_text()
    table = dict(re.findall(r"^\| `(crmcore[\w.]*)` \| (\d) ", text, flags=re.MULTILINE))
    assert {name: int(layer) for name, layer in table.items()} == LAYERS


#: Past this many lines a module is split by concept (hookspecs.py, the one place every hook is
#: specified, and generated migration scripts excepted).
MAX_LINES = 650


def long_modules(paths: list[Path], limit: int = MAX_LINES) -> list[str]:
    """``"path: N lines"`` of the *paths* longer than *limit*, except the hookspecs and migration
    scripts."""
    found = []
    for path in paths:
        if path.name == "hookspecs.py" or path.parent.name == "versions":
            continue
        count = len(path.read_text().splitlines())
        if count > limit:
            found.append(f"{path.relative_to(ROOT)}: {count} lines")
    return found


def test_a_long_module_is_found_and_the_exceptions_are_not() -> None:
    long, short = ROOT / "src/crmcore/storage/uow.py", ROOT / "src/crmcore/records.py"
    limit = len(short.read_text().splitlines())

    assert long_modules([long, short, ROOT / "src/crmcore/hookspecs.py"], limit) == [
        f"src/crmcore/storage/uow.py: {len(long.read_text().splitlines())} lines"]


def test_no_module_passes_the_size_limit() -> None:
    paths = sorted((SOURCE / "crmcore").rglob("*.py"))
    paths += sorted(path for package in ROOT.glob("plugins/*/crm_*") for path in package.rglob("*.py"))

    assert long_modules(paths) == [], f"split these modules by concept (limit {MAX_LINES} lines)"
