"""The arrows STYLE.md says we never draw, checked on the source: utils/ and errors.py are
leaves; nn/, losses/, data/, metrics/, faces/ know no method; methods and training/ do not meet
except through the method contract; nothing in the library imports the CLI."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "styleforge"


def _imports(path: Path) -> set[str]:
    """styleforge modules a file imports (at any depth in the file), as dotted names."""
    here = path.relative_to(PKG.parent).with_suffix("").parts  # ("styleforge", "nn", "vgg")
    package = here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ((node.module,) if node.module else ()))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n == "styleforge" or n.startswith("styleforge.")}
    return out


def _files(sub: str):
    root = PKG / sub
    return sorted(root.rglob("*.py")) if root.is_dir() else [PKG / sub]


RULES = [  # (files, forbidden prefixes, what the rule keeps simple)
    ("utils", ("styleforge.",), "utils/ is a leaf (beside errors.py)"),
    ("errors.py", ("styleforge.",), "errors.py is a leaf"),
    *[(d, ("styleforge.methods",), f"{d}/ knows no paper") for d in ("nn", "losses", "data", "metrics", "faces")],
    ("methods", ("styleforge.training",), "methods do not import the training loop"),
    ("training", ("styleforge.methods",), "the training loop imports no method"),
]


@pytest.mark.parametrize("sub, forbidden, why", RULES, ids=[r[2] for r in RULES])
def test_no_forbidden_import(sub, forbidden, why):
    bad = []
    for f in _files(sub):
        for mod in _imports(f):
            # utils/ may raise the exceptions of errors.py, the other leaf
            own = sub == "utils" and mod.startswith(("styleforge.utils", "styleforge.errors"))
            if not own and mod.startswith(forbidden):
                bad.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not bad, f"{why}: " + "; ".join(bad)


def test_nothing_in_the_library_imports_the_cli():
    bad = [f"{f.relative_to(PKG)} imports {m}" for f in PKG.rglob("*.py")
           if f.parent.name != "commands" and f.name not in ("cli.py", "__main__.py")
           for m in _imports(f) if m.startswith(("styleforge.cli", "styleforge.commands"))]
    assert not bad, bad


FRONT_ENDS = ("styleforge.export", "styleforge.batch", "styleforge.webapp", "styleforge.report",
              "styleforge.demo", "styleforge.demo_cyclegan", "styleforge.video", "styleforge.cli",
              "styleforge.commands", "styleforge.web")
PUBLIC_API = ("__init__.py", "pipeline.py", "runtime.py", "accel.py", "checkpoint.py", "registry.py", "config.py")


def test_the_public_api_imports_no_front_end():
    """styleforge.load and the pipeline (and the runtime of exported files below them) sit under
    the front ends: an import of one, even inside a function, would make a circle."""
    bad = [f"{name} imports {m}" for name in PUBLIC_API for m in _imports(PKG / name)
           if m.startswith(FRONT_ENDS)]
    assert not bad, bad


def _module_graph() -> dict[str, set[str]]:
    """module -> the styleforge modules it imports anywhere in the file ("from pkg import mod"
    counts as mod; a submodule's imports of its own packages, which run first anyway, do not)."""
    mods = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(PKG.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    graph = {}
    for name, f in mods.items():
        found = _imports(f)
        graph[name] = {m for m in found if m in mods and m != name and not name.startswith(m + ".")
                       and not any(o.startswith(m + ".") and o in mods for o in found)}
    return graph


def test_no_two_modules_import_each_other_through_any_path():
    graph, cycles = _module_graph(), []
    done: set[str] = set()

    def visit(node, path):
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert not cycles, "import circles: " + "; ".join(sorted(set(cycles))[:5])
