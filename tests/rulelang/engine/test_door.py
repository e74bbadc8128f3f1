"""The engine's one door (rulelang.engine): every name it offers resolves, importing it loads no
engine module, and the simulator reaches the engine through it only."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rulelang
import rulelang.engine as door

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", door.__all__)
def test_every_name_of_the_door_resolves(name):
    assert getattr(door, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'kernel_internals'"):
        door.kernel_internals  # noqa: B018


def test_importing_the_door_loads_neither_numba_nor_an_engine_module():
    code = "import sys, rulelang.engine; print(sorted(m for m in sys.modules if m == 'numba' or m.startswith('rulelang.engine.')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def _engine_imports(path: Path) -> list[str]:
    """The modules behind the door that a file imports (`rulelang.engine.x`), as written."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rulelang.engine."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("rulelang.engine.")]
    return found


def test_the_simulator_uses_nothing_behind_the_door():
    behind = {str(p.relative_to(ROOT)): _engine_imports(p) for p in sorted((ROOT / "simulator").rglob("*.py"))}
    assert {p: mods for p, mods in behind.items() if mods} == {}


ALLOWED = {"rulelang", "rulelang.engine", "rulelang.errors"}


def _language_imports(path: Path) -> list[str]:
    """The rulelang modules a file imports other than `rulelang`, its engine's door and its errors,
    counting `from rulelang import x` of a submodule x as importing that module."""
    submodules = {m.name for m in pkgutil.iter_modules(rulelang.__path__)}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rulelang":
            if node.module not in ALLOWED:
                found.append(node.module)
            elif node.module == "rulelang":
                found += [f"rulelang.{a.name}" for a in node.names if a.name in submodules]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "rulelang" and a.name not in ALLOWED]
    return found


def test_the_simulator_imports_only_rulelang_its_engine_door_and_its_errors():
    other = {str(p.relative_to(ROOT)): _language_imports(p) for p in sorted((ROOT / "simulator").rglob("*.py"))}
    assert {p: mods for p, mods in other.items() if mods} == {}


def test_the_import_check_finds_a_module_imported_by_name(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import rulelang\nfrom rulelang import Program, trace\nfrom rulelang.model import names_in\nfrom rulelang.errors import LoyaltyError\n")
    assert _language_imports(p) == ["rulelang.trace", "rulelang.model"]


@pytest.mark.parametrize("name", rulelang.__all__)
def test_every_name_of_the_language_resolves(name):
    assert getattr(rulelang, name) is not None


def test_the_simulator_writes_into_no_engine_object():
    """Derived batches and per-batch caches go through `Batch.derive` and `Batch.cached`."""
    written = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / "simulator").rglob("*.py"))
        if (n := sum(p.read_text(encoding="utf-8").count(s) for s in ("__dict__[", ".encodings[")))
    }
    assert written == {}


def test_the_check_finds_an_import_behind_the_door(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from rulelang.engine import NAT\nfrom rulelang.engine.kernel import run_kernel\nimport rulelang.engine.data\n")
    assert _engine_imports(p) == ["rulelang.engine.kernel", "rulelang.engine.data"]
