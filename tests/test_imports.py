"""Every module imports on its own, the package has no import cycle, and ``import grokscope``
has no side effects."""

import ast
import subprocess
import sys
from pathlib import Path

import grokscope

PACKAGE = Path(grokscope.__file__).parent
FILES = {".".join(("grokscope", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): p
         for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"}
MODULES = sorted(FILES)


def module_level_imports(path: Path, name: str) -> set[str]:
    """grokscope modules imported at module level (not inside functions) by one file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{a.name}" for a in node.names} & set(MODULES)
            found |= submodules | ({base} if len(submodules) < len(node.names) else set())
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}  # imported first anyway
    return {m for m in found if m in MODULES and m != name and m not in ancestors}


def test_no_import_cycle():
    graph = {m: module_level_imports(path, m) for m, path in FILES.items()}
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            assert state.get(n) != "open", "import cycle: " + " -> ".join(path + [m, n])
            if n not in state:
                visit(n, path + [m])
        state[m] = "done"

    for m in MODULES:
        if m not in state:
            visit(m, [])


def test_every_module_imports_on_its_own():
    """Each module imported first, in a process where no other grokscope module is loaded yet."""
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'grokscope' or m.startswith('grokscope.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_import_grokscope_reads_nothing_and_sets_nothing():
    script = (
        "import os, sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "before = dict(os.environ)\n"
        "import grokscope\n"
        "assert dict(os.environ) == before, 'os.environ changed'\n"
        "assert not [p for p in opened if p.startswith('/proc')], opened\n"
        "assert 'torch' not in sys.modules\n"
        "assert callable(grokscope.load_preset) and 'train_run' in dir(grokscope)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
