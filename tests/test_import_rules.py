"""The arrows STYLE.md says we never draw, checked on the source: utils/ and errors.py are
leaves; nn/, losses/, data/, metrics/, faces/ know no method; methods and training/ do not meet
except through the method contract; methods import no metrics/; nothing in the library imports
the CLI; no import, at the top of a file or inside a function, closes a circle."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "styleforge"


def _resolve(node, path: Path) -> set[str]:
    """styleforge modules one import statement names, as dotted names."""
    here = path.relative_to(PKG.parent).with_suffix("").parts  # ("styleforge", "nn", "vgg")
    package = here[:-1]
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
        return set()
    return {n for n in names if n == "styleforge" or n.startswith("styleforge.")}


def _imports(path: Path) -> set[str]:
    """styleforge modules a file imports (at any depth in the file), as dotted names."""
    return set().union(*(_resolve(node, path) for node in ast.walk(ast.parse(path.read_text()))))


def _files(sub: str):
    root = PKG / sub
    return sorted(root.rglob("*.py")) if root.is_dir() else [PKG / sub]


RULES = [  # (files, forbidden prefixes, what the rule keeps simple)
    ("utils", ("styleforge.",), "utils/ is a leaf (beside errors.py)"),
    ("errors.py", ("styleforge.",), "errors.py is a leaf"),
    *[(d, ("styleforge.methods",), f"{d}/ knows no paper") for d in ("nn", "losses", "data", "metrics", "faces")],
    ("methods", ("styleforge.training",), "methods do not import the training loop"),
    ("methods", ("styleforge.metrics",), "methods import no metrics (the front ends evaluate)"),
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
    """Only the entry points import cli.py, commands included (what they share lives in
    commands/inputs.py); only cli.py and the commands themselves import commands/."""
    bad = [f"{f.relative_to(PKG)} imports {m}" for f in PKG.rglob("*.py") if f.name not in ("cli.py", "__main__.py")
           for m in _imports(f) if m.startswith("styleforge.cli")
           or (m.startswith("styleforge.commands") and f.parent.name != "commands")]
    assert not bad, bad


def test_no_private_name_of_another_module_is_imported():
    """A name with a leading underscore is its module's own, anywhere in the package: a second
    user makes it public API (or moves it to nn/, losses/, utils/ or a shared module), so that
    its owner can change it freely."""
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and any(m.startswith("styleforge") for m in _resolve(node, f)):
                bad += [f"{f.relative_to(PKG)} line {node.lineno} imports {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_a_method_imports_another_method_only_to_build_on_its_class():
    """One paper per file: a method file imports from another method's file only when one of its
    classes subclasses a class from there (DPST on Gatys, Photo2Cartoon on U-GAT-IT); pieces two
    papers share live in nn/ or losses/ (UNIT took MUNIT's helpers before they moved there)."""
    bad = []
    for f in _files("methods"):
        tree = ast.parse(f.read_text())
        bases = {b.id for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for b in c.bases
                 if isinstance(b, ast.Name)}
        for node in ast.walk(tree):
            other = [m for m in _resolve(node, f) if m.startswith("styleforge.methods.")
                     and m.count(".") == 2 and m not in ("styleforge.methods.base", f"styleforge.methods.{f.stem}")]
            if other and not bases & {a.asname or a.name for a in node.names}:
                bad.append(f"{f.relative_to(PKG)} line {node.lineno} imports from {other[0]} without subclassing")
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



def _function_imports(path: Path, modules) -> list[tuple[int, str]]:
    """(line, module) of each styleforge import inside a function of ``path``: "from pkg import
    mod" is mod; "import styleforge" is the package itself (whose ``load`` imports the pipeline),
    as is "from styleforge import load"; a constant of a package the file is inside (``from .
    import __version__``) loads nothing: that package ran before the file."""
    name = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
    out, todo = [], [(n, False) for n in ast.parse(path.read_text()).body]
    while todo:
        node, inside = todo.pop()
        inside = inside or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        if inside and isinstance(node, (ast.Import, ast.ImportFrom)):
            found = {m for m in _resolve(node, path) if m in modules}
            for m in found:
                if any(o.startswith(m + ".") for o in found):
                    continue  # "from pkg import mod": mod
                if isinstance(node, ast.ImportFrom) and name.startswith(m + ".") and not any(
                        a.name in _functions(modules[m]) for a in node.names):
                    continue  # a constant of an enclosing package
                out.append((node.lineno, m))
        todo += [(child, inside) for child in ast.iter_child_nodes(node)]
    return out


def _functions(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text()).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_no_import_inside_a_function_hides_a_circle():
    """An import moved into a function still makes a circle when the module it loads imports,
    through any path, the module it is written in (the import only hides it until run time).
    The package's own ``import styleforge`` counts: ``styleforge.load`` imports the pipeline."""
    graph = _module_graph()
    files = {".".join(f.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): f
             for f in PKG.rglob("*.py")}
    below: dict[str, set[str]] = {}  # module -> every module it imports, through any path

    def reach(node):
        if node not in below:
            below[node] = set()
            for nxt in graph.get(node, ()):
                below[node] |= {nxt} | reach(nxt)
        return below[node]

    bad = [f"{name} line {line} imports {mod} inside a function, and {mod} imports {name}"
           for name, f in sorted(files.items()) for line, mod in _function_imports(f, files)
           if mod != name and name in reach(mod) | {mod}]
    assert not bad, bad
