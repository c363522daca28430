"""The house's shape, checked on the source (ast), so a change that breaks it fails here:

- no import cycle between the package's modules (function-local imports count too);
- imports flow one way: no module imports a stage above its own (STAGES), nothing
  imports refimpl.cli (or refimpl.experiments, outside experiments and cli);
- argparse is used in refimpl/cli/ only.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "refimpl"

# Lower stages first; a module may import its own stage and the ones before it. The CLI
# and __main__ are on top, the package's __init__ (the lazy public API) beside them.
STAGES = [
    ["errors"],
    ["_util"],
    ["audio"],
    ["image"],
    ["network"],
    ["features", "baselines"],
    ["corpus"],
    ["conditions"],
    ["protocol"],
    ["golden", "experiments"],
    ["cli", "__main__", "__init__"],
]
LEVEL = {name: i for i, names in enumerate(STAGES) for name in names}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stage_of(module):
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def imports(path, source=None):
    """Every refimpl module `path` imports, wherever the import statement stands."""
    tree = ast.parse(source if source is not None else path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "refimpl" or m.startswith("refimpl.")}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def resolve(name):
    """The module a dotted import name refers to (a name imported from a module maps to
    that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def graph(sources=None):
    """Module -> the modules it imports; `sources` may replace some modules' text."""
    edges = {}
    for name, path in MODULES.items():
        targets = imports(path, (sources or {}).get(name))
        resolved = {resolve(t) for t in targets} - {None, name}
        # a module's own package __init__ is how Python reaches it, not a dependency
        edges[name] = {t for t in resolved if not name.startswith(t + ".")}
    return edges


def test_every_stage_is_placed():
    stages = {stage_of(m) for m in MODULES}
    assert stages <= set(LEVEL), f"modules outside STAGES: {sorted(stages - set(LEVEL))}"


def test_no_import_cycles():
    edges = graph()
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def upward_imports(sources=None):
    wrong = []
    for name, targets in graph(sources).items():
        for target in targets:
            if target == "refimpl":
                continue
            if LEVEL[stage_of(target)] > LEVEL[stage_of(name)]:
                wrong.append(f"{name} imports {target}")
            elif stage_of(target) == "cli" and stage_of(name) != "cli" and name != "refimpl.__main__":
                wrong.append(f"{name} imports the CLI ({target})")
    return sorted(wrong)


def test_imports_flow_one_way():
    wrong = upward_imports()
    assert not wrong, "\n".join(wrong)


def test_argparse_only_in_the_cli():
    users = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "argparse" for n in names) and stage_of(name) != "cli":
                users.append(name)
    assert not users, f"argparse outside refimpl/cli/: {sorted(set(users))}"


@pytest.mark.parametrize("extra", ["from refimpl.cli import main",
                                   "from refimpl.experiments import grid",
                                   "from refimpl import features"])
def test_the_check_catches_an_upward_import(extra):
    """The check can fail: the audio stage importing something above it is reported."""
    source = MODULES["refimpl.audio"].read_text() + f"\n\ndef f():\n    {extra}\n"
    assert any(w.startswith("refimpl.audio imports")
               for w in upward_imports({"refimpl.audio": source}))
