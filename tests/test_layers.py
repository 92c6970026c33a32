"""The package's layers point one way, it has no import cycle, and the UI never imports torch.

decoding ← session ← commands / tui / bench: read in the order data flows, nothing below imports
from above. These checks read the source (every import, including the lazy ones inside functions),
so a shortcut across a layer fails here before it becomes a habit.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "specviz"

# What each top-level part of specviz may import from the others.
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),  # the public API names are imported lazily, by string
    "progress": set(),
    "decoding": set(),
    "models": {"progress"},
    "session": {"decoding", "models", "progress"},
    "render": {"decoding", "models", "progress"},
    "bench": {"__init__", "decoding", "models", "render", "session"},
    "tui": {"decoding", "progress", "render"},
    "commands": {"__init__", "bench", "decoding", "models", "progress", "render", "session", "tui"},
    "cli": {"__init__", "commands", "decoding", "models"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}


def _imported(node: ast.AST, modules: dict[str, ast.Module]) -> list[str]:
    """specviz modules an import statement names (``from a import b`` is ``a.b`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("specviz")]
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specviz"):
        names = [f"{node.module}.{a.name}" for a in node.names]
        return [n for n in names if n in modules] or [node.module]
    return []


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_each_layer_imports_only_from_the_layers_below() -> None:
    modules = _modules()
    wrong = sorted(
        f"{name} imports {target}"
        for name, tree in modules.items()
        for node in ast.walk(tree)
        for target in _imported(node, modules)
        if _part(target) != _part(name) and _part(target) not in ALLOWED[_part(name)]
    )
    assert not wrong, "imports across layers the wrong way:\n" + "\n".join(wrong)
    assert set(ALLOWED) >= {_part(name) for name in modules}, "a new top-level part needs its layer here"


def test_no_import_cycle_at_import_time() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in modules.items():
        for node in tree.body:  # module level only: what runs when the module is imported
            nodes = node.body if isinstance(node, ast.If) else [node]  # `if TYPE_CHECKING:` too
            for inner in nodes:
                graph[name].update(t for t in _imported(inner, modules) if t in modules and t != name)

    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_ui_and_the_cli_entry_never_import_torch() -> None:
    """torch takes seconds to import; the UI must run on a machine that only replays traces."""
    code = (
        "import sys; import specviz.cli, specviz.tui.app, specviz.commands.replay, specviz.decoding.settings, "
        "specviz.decoding.stats; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
