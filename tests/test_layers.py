"""The house keeps its layers (DESIGN.md): read the imports of python/clipcore (AST, nothing imported)
and fail on an import that points up a layer, on a private name (``_x``) taken from another module, on
the raw extension ``_ext`` outside ``_ffi/``, on an import cycle, on a file over 600 lines or a function
over 80 lines of code, and on a test that imports a private name.

Layers, lowest first (an import may point down, or sideways within a layer when no cycle forms):

0. shared:       _validate, _progress, _hostmem, _version, _warnings
1. kernels       (pure jnp: the one Gaussian tile, which the compiled core's JAX twins use too)
2. _ffi/         (the compiled core: the only code that touches _ext)
3. _options      (option groups; asks _ffi whether the core loaded)
4. data:         sources/, io, datasets
5. math:         covariance, schur, entropy, landmarks, nystrom, frobenius, nystrom_spectra, nystrom_projected,
                 product_kernel,
                 _blocks, metrics
6. sharding
7. functional     (the transformable scores; the host pipeline's in-memory math is this layer's, issue 17)
8. _pipeline/
9. models/, encoder/
10. host API:    scores, results, comparison, conditional, groups, editing, modes, tables, retrieval, embed, distributed,
                 models/*_eval
11. __init__
12. cli/
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "python" / "clipcore"
TESTS = ROOT / "tests"

LAYERS: list[tuple[int, str]] = [  # (layer, regex over the dotted module name without "clipcore.")
    (0, r"(_validate|_progress|_hostmem|_version|_warnings)"),
    (1, r"kernels"),
    (2, r"_ffi(\..*)?|_ext"),
    (3, r"_options"),
    (4, r"(sources(\..*)?|io|datasets)"),
    (5, r"(covariance|schur|dual_lowrank|entropy|landmarks|nystrom|frobenius|nystrom_spectra|nystrom_projected|"
        r"product_kernel|_blocks|metrics)"),
    (6, r"sharding"),
    (7, r"functional(\..*)?"),
    (8, r"_pipeline(\..*)?"),
    (10, r"models\.\w+_eval"),
    (9, r"(models|encoder)(\..*)?"),
    (10, r"(scores|results|editing|modes|tables|retrieval|embed|distributed|comparison|conditional|groups)"),
    (11, r""),  # the package's __init__
    (12, r"cli(\..*)?"),
]

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def layer_of(module: str) -> int:
    rel = module[len("clipcore."):] if module.startswith("clipcore.") else ""
    for layer, pattern in LAYERS:
        if re.fullmatch(pattern, rel):
            return layer
    raise AssertionError(f"{module}: no layer assigned (add it to LAYERS and to DESIGN.md)")


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        mods[".".join(parts)] = p
    return mods


MODULES = _modules()


def _resolve(module: str, is_pkg: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


class Imports:
    """Every clipcore import of one module: (line, target module, imported name or None)."""

    def __init__(self, module: str, path: pathlib.Path):
        self.module, self.path = module, path
        self.tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"
        self.edges: list[tuple[int, str, str | None]] = []
        self.aliases: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                tgt = _resolve(module, is_pkg, node.level, node.module) if node.level else (node.module or "")
                if not tgt.startswith("clipcore"):
                    continue
                for a in node.names:
                    sub = f"{tgt}.{a.name}"
                    if sub in MODULES or a.name == "_ext":
                        self.edges.append((node.lineno, sub, None))
                        self.aliases[a.asname or a.name] = sub
                    else:
                        self.edges.append((node.lineno, tgt, a.name))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("clipcore"):
                        self.edges.append((node.lineno, a.name, None))
                        if a.asname:
                            self.aliases[a.asname] = a.name


ALL = {m: Imports(m, p) for m, p in MODULES.items()}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_package(module: str, target: str) -> bool:
    """A package's __init__ re-exporting its own submodules, or a module of the same package."""
    return target.startswith(module + ".") or module.startswith(target + ".")


def test_every_module_has_a_layer():
    for m in MODULES:
        layer_of(m)


def test_imports_point_down():
    bad = []
    for m, imp in ALL.items():
        mine = layer_of(m)
        for line, target, _name in imp.edges:
            if target == "clipcore" or _own_package(m, target):
                continue
            tgt = target if target in MODULES or target == "clipcore._ext" else target.rsplit(".", 1)[0]
            if layer_of(tgt) > mine:
                bad.append(f"{imp.path.relative_to(ROOT)}:{line}: {m} (layer {mine}) imports {target} "
                           f"(layer {layer_of(tgt)})")
    assert not bad, "imports pointing up a layer:\n" + "\n".join(bad)


def test_no_private_names_cross_modules():
    bad = []
    for m, imp in ALL.items():
        for line, target, name in imp.edges:
            if name is not None and _private(name) and target != m:
                bad.append(f"{imp.path.relative_to(ROOT)}:{line}: {m} takes {name} from {target}")
        for node in ast.walk(imp.tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imp.aliases and _private(node.attr) and node.attr != "_ext"
                    and imp.aliases[node.value.id] != m):
                bad.append(f"{imp.path.relative_to(ROOT)}:{node.lineno}: {m} reaches "
                           f"{imp.aliases[node.value.id]}.{node.attr}")
    assert not bad, "private names crossing modules:\n" + "\n".join(bad)


def test_raw_extension_only_in_ffi():
    bad = []
    for m, imp in ALL.items():
        if m.startswith("clipcore._ffi"):
            continue
        for node in ast.walk(imp.tree):
            if (isinstance(node, ast.Attribute) and node.attr == "_ext") or (
                    isinstance(node, ast.ImportFrom) and any(a.name == "_ext" for a in node.names)):
                bad.append(f"{imp.path.relative_to(ROOT)}:{node.lineno}: {m}")
    assert not bad, "_ext used outside _ffi/:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for m, imp in ALL.items():
        for _line, target, _name in imp.edges:
            tgt = target if target in MODULES else target.rsplit(".", 1)[0]
            if tgt in MODULES and tgt != m and not (m == tgt.rsplit(".", 1)[0] and MODULES[m].name == "__init__.py"):
                graph[m].add(tgt)
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


def _function_lengths(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            if body:
                yield node.name, node.lineno, body[-1].end_lineno - body[0].lineno + 1


def test_files_and_functions_are_small():
    bad = []
    for m, p in MODULES.items():
        lines = len(p.read_text().splitlines())
        if lines > MAX_FILE_LINES:
            bad.append(f"{p.relative_to(ROOT)}: {lines} lines > {MAX_FILE_LINES}")
        for name, line, n in _function_lengths(ALL[m].tree):
            if n > MAX_FUNCTION_LINES:
                bad.append(f"{p.relative_to(ROOT)}:{line}: {name} has {n} lines of code > {MAX_FUNCTION_LINES}")
    assert not bad, "\n".join(bad)


def _test_files():
    return sorted(p for p in TESTS.rglob("*.py") if "reference" not in p.parts[len(TESTS.parts):-1])


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_tests_import_no_private_names(path):
    """Tests use the public names of the modules they test (a private module such as ``_ffi`` may be
    imported as a whole; its ``_x`` names may not)."""
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}  # local name -> clipcore module it stands for
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("clipcore"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in MODULES:
                    aliases[a.asname or a.name] = sub
                elif _private(a.name):
                    bad.append(f"line {node.lineno}: from {node.module} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("clipcore"):
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["clipcore"] = "clipcore"

    def module_of(expr) -> str | None:
        if isinstance(expr, ast.Name):
            return aliases.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = module_of(expr.value)
            if base is not None and f"{base}.{expr.attr}" in MODULES:
                return f"{base}.{expr.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr != "_ext":
            base = module_of(node.value)
            if base is not None and f"{base}.{node.attr}" not in MODULES:
                bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not bad, f"{path.relative_to(ROOT)} imports private names:\n" + "\n".join(bad)
