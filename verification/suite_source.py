"""What the suite test modules hold, read from their source — never imported.

The coverage map claims that a suite test exists, is parametrized with certain values and
holds a named check. It reads those claims from the test files' text (Python's own `ast`),
so the library never imports a test module: importing one would run its module-level
code and tie this package to the test folder, the cycle `verification` exists to break.
"""

from __future__ import annotations

import ast
import importlib
from functools import lru_cache
from pathlib import Path

from verification.spec import SUITES_DIR



def path_of(module: str) -> Path:
    """"suites.test_interlocks" or "suites/test_interlocks.py" → the file."""
    name = module.removesuffix(".py").replace("/", ".")
    package, _, stem = name.rpartition(".")
    if package != "suites":
        raise ValueError(f"{module}: not a suite test module (suites.test_…)")
    return SUITES_DIR / f"{stem}.py"


@lru_cache(maxsize=None)
def _parsed(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError):
        return None


def source(module: str) -> str | None:
    path = path_of(module)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def why_unreadable(module: str) -> str | None:
    """None when the module's source parses, else why not."""
    path = path_of(module)
    if not path.is_file():
        return f"no {path.name} in suites/"
    return None if _parsed(path) is not None else f"{path.name} does not parse"


def _function(module: str, test: str) -> ast.FunctionDef | None:
    tree = _parsed(path_of(module))
    if tree is None:
        return None
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == test), None)


def has_test(module: str, test: str) -> bool:
    return _function(module, test) is not None


def _value_of(module: str, node: ast.expr):
    """A literal, a module-level name bound to one, or a name imported from the library."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple")
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name)):
        # list(CASES) over a module-level dict of cases: its keys, as pytest gets them (the
        # values may be the library's, e.g. the LAST_REJECT each case expects)
        return list(_keys_of(module, node.args[0].id))
    if not isinstance(node, ast.Name):
        raise LookupError(f"{module}: a parametrize argument that is not a literal, a name or list(NAME)")
    tree = _parsed(path_of(module))
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets):
            return ast.literal_eval(stmt.value)
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.module.split(".")[0] == "verification":
            for alias in stmt.names:
                if (alias.asname or alias.name) == node.id:
                    return getattr(importlib.import_module(stmt.module), alias.name)
    raise LookupError(f"{module}: {node.id} is neither a literal list in the module nor imported from verification")


def _keys_of(module: str, name: str) -> list:
    """The literal keys of a module-level dict bound to `name` (list(name) of it)."""
    for stmt in _parsed(path_of(module)).body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            if isinstance(stmt.value, ast.Dict) and None not in stmt.value.keys:
                return [ast.literal_eval(k) for k in stmt.value.keys]
            return list(ast.literal_eval(stmt.value))
    raise LookupError(f"{module}: no module-level {name} to take the cases of")


def imports_from(module: str, library: str) -> bool:
    """The suite module imports from `library` (`from library import …`)."""
    tree = _parsed(path_of(module))
    return tree is not None and any(isinstance(n, ast.ImportFrom) and n.module == library for n in tree.body)


def parametrized(module: str, test: str, argname: str) -> list | None:
    """The values `@pytest.mark.parametrize(argname, VALUES)` gives the test (None: no such
    parametrize, or no such test)."""
    fn = _function(module, test)
    if fn is None:
        return None
    for deco in fn.decorator_list:
        if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "parametrize"
                and deco.args and isinstance(deco.args[0], ast.Constant) and deco.args[0].value == argname
                and len(deco.args) > 1):
            return list(_value_of(module, deco.args[1]))
    return None


def parametrize_values(module: str, test: str) -> list:
    """Every value of every parametrize of the test."""
    fn = _function(module, test)
    values: list = []
    for deco in fn.decorator_list if fn is not None else ():
        if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "parametrize"
                and len(deco.args) > 1):
            values.extend(_value_of(module, deco.args[1]))
    return values
