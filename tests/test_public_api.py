"""The public API of docs/api.md is what plugins use: the builtin plugins, the first-party
plugins, the adapters and the examples import from crmcore only the public modules and the
names in their ``__all__``, never a ``_`` name (``TYPE_CHECKING`` imports included). A name
reached through a public module bound by an import (``security.add_user``) must be public too.
docs/api.md lists exactly these modules and, for each, the names of its ``__all__``."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import crmcore

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.md"

#: The public modules: the same list stands in the table of docs/api.md (a test keeps the two in step).
PUBLIC_MODULES = (
    "crmcore",
    "crmcore.actors",
    "crmcore.calendars",
    "crmcore.cli",
    "crmcore.conformance",
    "crmcore.demo",
    "crmcore.errors",
    "crmcore.fields",
    "crmcore.hookspecs",
    "crmcore.jobs",
    "crmcore.jobs.reminders",
    "crmcore.merge",
    "crmcore.money",
    "crmcore.plugins",
    "crmcore.query",
    "crmcore.records",
    "crmcore.security",
    "crmcore.settings",
    "crmcore.signals",
    "crmcore.storage",
    "crmcore.testing",
    "crmcore.transfer",
    "crmcore.workflow",
)

#: The folders of code that stands on the public API only.
PLUGIN_FOLDERS = ("src/crmcore/builtin", "plugins", "contrib", "examples")

#: A plugin's own modules, which only that plugin imports: the builtin sales plugin keeps its
#: modules in ``crmcore.sales`` until it moves to plugins/sales.
OWN_MODULES = {"src/crmcore/builtin/sales.py": "crmcore.sales"}


def all_modules() -> set[str]:
    return {"crmcore", *(m.name for m in pkgutil.walk_packages(crmcore.__path__, "crmcore."))}


def exported(module: str) -> set[str]:
    return set(importlib.import_module(module).__all__)


def plugin_files() -> list[Path]:
    return sorted(
        path for folder in PLUGIN_FOLDERS for path in (ROOT / folder).rglob("*.py")
        if not {".venv", "build"} & set(path.relative_to(ROOT).parts)
    )


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_crmcore(module: str) -> bool:
    return module == "crmcore" or module.startswith("crmcore.")


def problems_of(path: Path, modules: set[str]) -> list[str]:
    """What *path* imports from crmcore beyond the public API, one line per name."""
    relative = path.relative_to(ROOT).as_posix()
    own = OWN_MODULES.get(relative)
    tree = ast.parse(path.read_text(), filename=relative)
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> public module it stands for

    def allowed_module(module: str) -> bool:
        return module in PUBLIC_MODULES or (own is not None and (module == own or module.startswith(own + ".")))

    def check_module(node: ast.stmt, module: str, local: str | None) -> None:
        if any(private(part) for part in module.split(".")):
            found.append(f"{relative}:{node.lineno}: {module} is private (a '_' name)")
        elif not allowed_module(module):
            found.append(f"{relative}:{node.lineno}: {module} is not a public module (docs/api.md)")
        elif local is not None and module in PUBLIC_MODULES:
            bound[local] = module

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_crmcore(alias.name):
                    check_module(node, alias.name, alias.asname)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module and _is_crmcore(node.module):
            if not allowed_module(node.module):
                check_module(node, node.module, None)
                continue
            own_module = node.module not in PUBLIC_MODULES
            for alias in node.names:
                name, local = alias.name, alias.asname or alias.name
                if name == "*":
                    found.append(f"{relative}:{node.lineno}: from {node.module} import *: name the names")
                elif private(name):
                    found.append(f"{relative}:{node.lineno}: {node.module}.{name} is private (a '_' name)")
                elif f"{node.module}.{name}" in modules:
                    check_module(node, f"{node.module}.{name}", local)
                elif not own_module and name not in exported(node.module):
                    found.append(f"{relative}:{node.lineno}: {node.module}.{name} is not in {node.module}.__all__")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            module = bound[node.value.id]
            if node.attr not in exported(module) and f"{module}.{node.attr}" not in PUBLIC_MODULES:
                found.append(f"{relative}:{node.lineno}: {module}.{node.attr} (as {node.value.id}.{node.attr}) "
                             f"is not in {module}.__all__")
    return found


def test_plugins_import_only_the_public_api():
    modules = all_modules()
    files = plugin_files()
    assert any(p.name == "plugin.py" for p in files)  # the folders are found
    problems = [line for path in files for line in problems_of(path, modules)]
    assert problems == [], "import these from a public module of docs/api.md, or make them public there:\n" + "\n".join(problems)


def test_the_check_names_file_line_and_name(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    plugin = tmp_path / "plugins" / "demo" / "plugin.py"
    plugin.parent.mkdir(parents=True)
    plugin.write_text(
        "from typing import TYPE_CHECKING\n"
        "from crmcore import Crm, hookimpl\n"
        "from crmcore import security as admin\n"
        "from crmcore.storage.uow import UnitOfWork\n"
        "from crmcore.query import _private\n"
        "from crmcore.fields import RESERVED_NAMES\n"
        "if TYPE_CHECKING:\n"
        "    from crmcore.registry import Registry\n"
        "admin.add_user, admin.access\n"
    )

    problems = problems_of(plugin, all_modules())

    assert problems == [
        "plugins/demo/plugin.py:4: crmcore.storage.uow is not a public module (docs/api.md)",
        "plugins/demo/plugin.py:5: crmcore.query._private is private (a '_' name)",
        "plugins/demo/plugin.py:6: crmcore.fields.RESERVED_NAMES is not in crmcore.fields.__all__",
        "plugins/demo/plugin.py:8: crmcore.registry is not a public module (docs/api.md)",
        "plugins/demo/plugin.py:9: crmcore.security.access (as admin.access) is not in crmcore.security.__all__",
    ]


def test_every_public_module_exports_names_that_exist():
    for module in PUBLIC_MODULES:
        imported = importlib.import_module(module)
        missing = [name for name in imported.__all__ if not hasattr(imported, name)]
        assert missing == [], f"{module}.__all__ names what it lacks"
        assert not [name for name in imported.__all__ if private(name)]


def api_table() -> list[str]:
    return re.findall(r"^\| `(crmcore[\w.]*)` \|", API.read_text(), flags=re.MULTILINE)


def api_names() -> dict[str, list[str]]:
    """``{module: names}`` of the "Names by module" section of docs/api.md."""
    section = API.read_text().partition("## Names by module")[2].partition("\n## ")[0]
    return {
        module: re.findall(r"`([\w.]+)`", names)
        for module, names in re.findall(r"^- `(crmcore[\w.]*)`: (.*)$", section, flags=re.MULTILINE)
    }


def names_section() -> str:
    return "\n".join(
        f"- `{module}`: " + ", ".join(f"`{name}`" for name in sorted(exported(module)))
        for module in PUBLIC_MODULES
    )


def test_the_api_page_lists_the_public_modules():
    assert api_table() == list(PUBLIC_MODULES)


def test_the_api_page_lists_the_names_of_each_public_module():
    listed = api_names()
    expected = {module: sorted(exported(module)) for module in PUBLIC_MODULES}
    assert listed == expected, f"the 'Names by module' section of docs/api.md should read:\n{names_section()}"
