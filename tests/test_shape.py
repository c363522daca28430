"""The house's shape, checked on the source (ast), so a change that breaks it fails here:

- no import cycle between the package's modules (function-local imports count too);
- imports flow one way: no module imports a stage above its own (STAGES), nothing
  imports refimpl.cli (or refimpl.experiments, outside experiments and cli);
- argparse is used in refimpl/cli/ only, and so is print(): a library call answers by
  its return value, a warning (refimpl.errors.RefimplWarning) or an error, and only the
  command line writes to the terminal (a worker run as its own program under another
  Python, free of refimpl imports, talks to the package through its stdout);
- no module is longer than LONG_MODULE lines unless its docstring says why, on a line
  that starts with the marker "Long because:" (a split is the usual answer);
- every warning class of the package derives from refimpl.errors.RefimplWarning (which the
  command line prints as one line), and every warnings.warn names its category;
- an __init__.py only re-exports: a docstring, imports, __all__, and at most the one line
  of the lazy mechanism (`__getattr__, __dir__ = lazy_attributes(...)`,
  refimpl._util.lazy); the implementation lives in the package's modules.

KNOWN_EXCEPTIONS names the modules that break a rule today and are being changed on
other branches; an entry that no longer breaks its rule fails the test, so the list only
shrinks.
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


LONG_MODULE = 500
LONG_MARKER = "Long because:"

# rule -> {module: why it is exempt for now}; see the module docstring
KNOWN_EXCEPTIONS = {
    "print": {},
    "long": {},
    "warn": {},
    "init": {},
}


def standalone_program(tree):
    """A worker run as its own program under another Python (Caffe's, matplotlib 2.0.2's):
    a `__main__` guard and no refimpl import. Its stdout is its channel to the package,
    not a terminal, so print() is how it talks."""
    guarded = any(isinstance(n, ast.If) and isinstance(n.test, ast.Compare)
                  and getattr(n.test.left, "id", None) == "__name__" for n in tree.body)
    return guarded and not any(
        (isinstance(n, ast.ImportFrom) and (n.module or "").startswith("refimpl"))
        or (isinstance(n, ast.Import) and any(a.name.startswith("refimpl") for a in n.names))
        for n in ast.walk(tree))


def printing_modules(sources=None):
    """Modules outside refimpl/cli/ that call print()."""
    found = set()
    for name, path in MODULES.items():
        if stage_of(name) == "cli":
            continue
        tree = ast.parse((sources or {}).get(name) or path.read_text())
        if standalone_program(tree):
            continue
        if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
               for n in ast.walk(tree)):
            found.add(name)
    return found


def long_modules(sources=None):
    """Modules over LONG_MODULE lines whose docstring gives no reason (LONG_MARKER)."""
    found = set()
    for name, path in MODULES.items():
        source = (sources or {}).get(name) or path.read_text()
        if source.count("\n") <= LONG_MODULE:
            continue
        doc = ast.get_docstring(ast.parse(source)) or ""
        if not any(line.strip().startswith(LONG_MARKER) for line in doc.splitlines()):
            found.add(name)
    return found


def _is_lazy_line(node):
    return (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Tuple)
            and [getattr(e, "id", None) for e in node.targets[0].elts] == ["__getattr__",
                                                                          "__dir__"]
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "lazy_attributes")


def implementing_inits(sources=None):
    """Packages whose __init__.py holds more than re-exports (see the module docstring)."""
    found = set()
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        body = ast.parse((sources or {}).get(name) or path.read_text()).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]                                  # the docstring
        lazy = [n for n in body if _is_lazy_line(n)]
        other = [n for n in body if not (
            isinstance(n, (ast.Import, ast.ImportFrom)) or n in lazy
            or (isinstance(n, (ast.Assign, ast.AnnAssign)) and [
                getattr(t, "id", None) for t in getattr(n, "targets", [getattr(n, "target", None)])
            ] == ["__all__"]))]
        if other or len(lazy) > 1:
            found.add(name)
    return found


def stray_warnings(sources=None):
    """Modules that define a warning class outside RefimplWarning's tree, or warn without
    naming a category (a bare UserWarning)."""
    import refimpl.errors
    ours = {c.__name__ for c in _subclasses(refimpl.errors.RefimplWarning)}
    found = set()
    for name, path in MODULES.items():
        tree = ast.parse((sources or {}).get(name) or path.read_text())
        for node in ast.walk(tree):
            bases = {getattr(b, "id", None) or getattr(b, "attr", None)
                     for b in getattr(node, "bases", [])}
            if (isinstance(node, ast.ClassDef) and node.name.endswith("Warning")
                    and node.name != "RefimplWarning" and not bases & ours):
                found.add(name)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "warn"
                    and getattr(node.func.value, "id", None) == "warnings"
                    and len(node.args) < 2 and not any(k.arg == "category"
                                                       for k in node.keywords)):
                found.add(name)
    return found


def _subclasses(cls):
    return {cls} | {s for c in cls.__subclasses__() for s in _subclasses(c)}


RULES = {"print": printing_modules, "long": long_modules, "init": implementing_inits,
         "warn": stray_warnings}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_house_rules_hold(rule):
    breaking = RULES[rule]()
    exempt = KNOWN_EXCEPTIONS[rule]
    new = sorted(breaking - set(exempt))
    assert not new, f"rule {rule!r} broken by {new} (see this test's docstring)"
    mended = sorted(set(exempt) - breaking)
    assert not mended, f"rule {rule!r} now holds for {mended}: remove them from KNOWN_EXCEPTIONS"


@pytest.mark.parametrize("rule, module, extra", [
    ("print", "refimpl.audio", "\n\ndef f():\n    print('done')\n"),
    ("long", "refimpl.audio", "\n" * (LONG_MODULE + 1)),
    ("init", "refimpl.features", "\n\ndef helper():\n    return 1\n"),
    ("init", "refimpl.features", "\n\nDEFAULT = 3\n"),
    ("warn", "refimpl.audio", "\n\nclass ShortWarning(UserWarning):\n    pass\n"),
    ("warn", "refimpl.audio", "\n\ndef f():\n    warnings.warn('short')\n"),
])
def test_the_house_rules_can_fail(rule, module, extra):
    """Each check reports a module that breaks its rule."""
    source = MODULES[module].read_text() + extra
    assert module in RULES[rule]({module: source})


def test_a_long_module_with_a_reason_passes():
    path = MODULES["refimpl.audio"]
    source = path.read_text().replace('"""', f'"""{LONG_MARKER} a test.\n', 1)
    assert "refimpl.audio" not in long_modules({"refimpl.audio": source + "\n" * LONG_MODULE})
