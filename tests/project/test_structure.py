"""The package's shape, read from its source with ast (nothing is imported): no import circle, no import from a
higher layer, modules of at most 400 lines and functions of at most 80, with today's exceptions listed below
(the lists may only shrink). ``python tests/project/test_structure.py`` prints the numbers."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "syne_prune"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# Layer of each part of syne_prune (a top-level module or sub-package; "" is syne_prune/__init__.py, the public
# API): a module imports from its own layer or lower ones only, in function bodies too. Derived from the code:
# errors and numerics sit below models (models raise SynePruneError and check weights for NaN).
LAYERS = {
    "cli": 5, "__main__": 5,  # the command line: parses, calls, prints
    "search": 4, "baselines": 4, "blackbox": 4, "quickstart": 4,  # workflows over the pieces below
    "supernet": 3, "export": 3, "model_card": 3, "recovery": 3, "training": 3, "importance": 3, "embedding": 3,  # training and writing models
    "": 2, "masks": 2, "surgery": 2, "objectives": 2, "search_spaces": 2, "data": 2, "evaluation": 2, "pareto": 2,  # the core
    "models": 1, "artifacts": 1, "aws": 1,  # model families and the pruned model classes; the files the stages hand on; SageMaker jobs
    "errors": 0, "numerics": 0, "cores": 0, "options": 0, "versions": 0, "files": 0, "_threads": 0,  # _threads: imported first, undoes an environment change
}
# Imports from a higher layer that exist today (importer, imported module), each with the reason; remove an
# entry when its import goes.
UPWARD_IMPORTS: dict[tuple[str, str], str] = {}
# Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES today, with their length now: they may get
# shorter, not longer, and leave the list once within the limit.
LONG_MODULES: dict[str, int] = {}
LONG_FUNCTIONS: dict[str, int] = {}


def _modules() -> dict[str, Path]:
    """``{"syne_prune.search.run": path}`` for every module of the package (a package by its ``__init__``)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules of syne_prune that an import statement in ``module`` names (``from pkg import name`` names
    ``pkg.name`` when that is a module, else ``pkg``). Importing a submodule also runs its packages'
    ``__init__``; that implicit step is not an edge here."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    targets = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name not in targets:
            targets.append(name)
    return targets


def _imports(module: str, type_checking: bool = False) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """``(module level, in functions)``: (line, imported syne_prune module) of every import in ``module``;
    imports under ``if TYPE_CHECKING:`` are left out (they never run) unless ``type_checking``, then they count
    as module level."""
    top: list[tuple[int, str]] = []
    local: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (local if in_function else top).extend((child.lineno, t) for t in _targets(module, child))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test) and not type_checking:
                continue
            else:
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(MODULES[module].read_text()), False)
    return top, local


def _part(module: str) -> str:
    """The part of syne_prune a module belongs to: ``syne_prune.search.run`` -> ``search``."""
    return module.split(".")[1] if "." in module else ""


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a graph: its strongly connected components with more than one node (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1 or node in edges.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return cycles


def test_the_layer_table_covers_the_package():
    assert {_part(m) for m in MODULES} == set(LAYERS)


def test_no_import_circle_at_module_level():
    edges = {m: {t for _, t in _imports(m)[0] if t != m} for m in MODULES}
    assert _cycles(edges) == []


def test_no_import_circle_counting_type_checking_and_function_imports():
    """No module imports itself through others, even where an import runs only for the type checker or inside a
    function (hiding a circle that way keeps the modules tied: neither can be read or changed alone)."""
    edges = {m: {t for _, t in sum(_imports(m, type_checking=True), []) if t != m} for m in MODULES}
    assert _cycles(edges) == []


def test_no_circle_between_parts_counting_imports_in_functions():
    """Parts of one layer may import each other, but not both ways (search -> supernet, never back)."""
    edges = defaultdict(set)
    for module in MODULES:
        top, local = _imports(module)
        for _, target in top + local:
            if _part(target) != _part(module) and (module, target) not in UPWARD_IMPORTS:
                edges[_part(module)].add(_part(target))
    assert _cycles(edges) == []


def test_no_import_from_a_higher_layer():
    upward = set()
    for module in MODULES:
        top, local = _imports(module)
        for _, target in top + local:
            if LAYERS[_part(target)] > LAYERS[_part(module)]:
                upward.add((module, target))
    assert upward <= set(UPWARD_IMPORTS), sorted(upward - set(UPWARD_IMPORTS))
    assert set(UPWARD_IMPORTS) <= upward, f"gone, remove from UPWARD_IMPORTS: {sorted(set(UPWARD_IMPORTS) - upward)}"


SUBPACKAGES = {_part(m) for m, path in MODULES.items() if path.name == "__init__.py" and m.count(".") == 1}
"""The parts of syne_prune that are folders (``search``, ``models``, ...): each has a public face, its ``__init__``."""


def _crossings(module: str) -> list[str]:
    """What ``module`` imports from another subpackage other than through that subpackage's ``__init__``, and
    every private (underscore) name it imports from another module, as ``"line: target"``."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for target in _targets(module, node):
            part = _part(target)
            if part != _part(module) and part in SUBPACKAGES and target != f"syne_prune.{part}":
                found.append(f"{node.lineno}: {target}")
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: {node.module}.{alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__") and alias.name != "_threads"]
    return found


def test_subpackages_are_used_through_their_public_face():
    """Code outside a subpackage imports it only from its ``__init__`` (which names what others may use), and no
    module imports another's private names."""
    assert {m: c for m in MODULES if (c := _crossings(m))} == {}


def _lengths() -> tuple[dict[str, int], dict[str, int]]:
    """``(module lines, function lines)`` by path and ``path::function`` (methods as ``Class.method``)."""
    modules, functions = {}, {}
    for path in MODULES.values():
        name = str(path.relative_to(PACKAGE.parent))
        text = path.read_text()
        modules[name] = len(text.splitlines())

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions[f"{name}::{prefix}{child.name}"] = child.end_lineno - child.lineno + 1
                    visit(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")
                else:
                    visit(child, prefix)

        visit(ast.parse(text), "")
    return modules, functions


def _check_limit(lengths: dict[str, int], limit: int, allowed: dict[str, int]) -> list[str]:
    problems = [f"{name}: {n} lines (limit {limit})" for name, n in sorted(lengths.items()) if n > max(limit, allowed.get(name, 0))]
    problems += [f"{name}: now {lengths.get(name, 0)} lines, remove it from the list of exceptions"
                 for name in sorted(allowed) if lengths.get(name, 0) <= limit]
    return problems


def test_modules_and_functions_stay_small():
    modules, functions = _lengths()
    assert _check_limit(modules, MAX_MODULE_LINES, LONG_MODULES) == []
    assert _check_limit(functions, MAX_FUNCTION_LINES, LONG_FUNCTIONS) == []


def _uncommented_local_imports(source: str) -> list[int]:
    """Lines of the import statements inside functions of ``source`` that carry no comment. A run of import
    statements on consecutive lines is one block; a comment on its first line speaks for the block."""
    lines = source.splitlines()
    imports = sorted({(node.lineno, node.end_lineno) for function in ast.walk(ast.parse(source))
                      if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                      for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))})
    found, block_commented, previous_end = [], False, -1
    for first, last in imports:
        if first != previous_end + 1:  # a new block
            block_commented = "#" in lines[first - 1]
        if not block_commented and not any("#" in line for line in lines[first - 1:last]):
            found.append(first)
        previous_end = last
    return found


def test_imports_inside_functions_say_why():
    """An import inside a function is there for a reason — optional (AWS, ONNX), slow to import and off the
    common path, or a circle at import time — and a comment on it says which; every other import is at the top."""
    assert [f"{path.relative_to(PACKAGE.parent)}:{line}" for path in MODULES.values()
            for line in _uncommented_local_imports(path.read_text())] == []


def test_the_checks_see_what_they_check():
    """The helpers on known inputs: a circle, an upward import, a long module and a longer-than-listed one."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert ("syne_prune.cli", "syne_prune.search") not in UPWARD_IMPORTS and LAYERS["cli"] > LAYERS["search"]
    assert _targets("syne_prune.search.run", ast.parse("from syne_prune.supernet import train").body[0]) == ["syne_prune.supernet.train"]
    assert _targets("syne_prune.search.run", ast.parse("from .trial import OBJECTIVES").body[0]) == ["syne_prune.search.trial"]
    assert _targets("syne_prune.search", ast.parse("from . import run").body[0]) == ["syne_prune.search.run"]
    assert _check_limit({"m.py": 401, "n.py": 12}, 400, {"n.py": 500}) == ["m.py: 401 lines (limit 400)",
                                                                           "n.py: now 12 lines, remove it from the list of exceptions"]
    assert _check_limit({"m.py": 450}, 400, {"m.py": 420}) == ["m.py: 450 lines (limit 400)"]
    assert _part("syne_prune.models.bert") == "models" and "models" in SUBPACKAGES and "surgery" not in SUBPACKAGES
    source = ("import os\n\ndef f():\n    import json  # slow\n    from a import (b,\n        c)\n\n    import d\n\n"
              "def g():\n    from e import h\n    return h  # commented, but not the import\n")
    assert _uncommented_local_imports(source) == [8, 11]


def report() -> dict[str, int]:
    """The numbers: modules over the line limit, functions over it, import statements inside functions (all of
    them, and those that import a syne_prune module)."""
    modules, functions = _lengths()
    local = []
    for module, path in MODULES.items():
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local += [(module, n) for statement in function.body for n in ast.walk(statement) if isinstance(n, (ast.Import, ast.ImportFrom))]
    local = list({(m, n.lineno): (m, n) for m, n in local}.values())  # a nested function's imports once
    return {
        "modules_over_limit": sum(n > MAX_MODULE_LINES for n in modules.values()),
        "functions_over_limit": sum(n > MAX_FUNCTION_LINES for n in functions.values()),
        "local_import_statements": len(local),
        "local_import_statements_of_syne_prune": sum(bool(_targets(m, n)) for m, n in local),
    }


if __name__ == "__main__":
    print(report())
