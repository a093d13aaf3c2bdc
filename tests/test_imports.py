"""The package's import graph: every module imports on its own, no module imports itself through others,
and the configuration layer loads without torch."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "forgetlab"
ALLOWED_CYCLES: set[frozenset] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """forgetlab modules that ``name`` imports anywhere in its file (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:  # "from . import x" names a module; "from .x import y" names one of x
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> set[frozenset]:
    """Sets of modules that reach each other (strongly connected components of more than one module)."""
    reach = {m: set() for m in graph}
    for start in graph:
        stack = list(graph[start])
        while stack:
            m = stack.pop()
            if m not in reach[start]:
                reach[start].add(m)
                stack.extend(graph[m])
    return {frozenset({m} | {n for n in reach[m] if m in reach[n]}) for m in graph if m in reach[m]}


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["forgetlab.engine.training"] >= {
        "forgetlab.strategies",
        "forgetlab.engine.steps",
    }  # the parser sees imports
    assert _cycles(graph) <= ALLOWED_CYCLES, _cycles(graph) - ALLOWED_CYCLES


def _python(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_module_imports_alone():
    """In a fresh interpreter, each module imported with no other forgetlab module loaded before it."""
    _python(f"""
import importlib, sys
for name in {sorted(m for m in _modules() if not m.endswith("__main__"))!r}:  # __main__ runs the CLI
    for m in [m for m in sys.modules if m == "forgetlab" or m.startswith("forgetlab.")]:
        del sys.modules[m]
    importlib.import_module(name)
""")


def test_the_configuration_layer_loads_without_torch():
    assert _python("import sys, forgetlab.config, forgetlab.config.presets; print('torch' in sys.modules)") == "False"
