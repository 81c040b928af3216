"""Tolerance formulas from specification files, e.g. `max(0.05 * setting, 10)`.

Specifications are data written by people; a formula is parsed once at load time
into a small whitelisted AST (numbers, names, + - * /, min/max/abs) so a typo is a
load error naming the requirement, and nothing in a spec file can execute code.
"""

from __future__ import annotations

import ast
import operator

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCS = {"max": max, "min": min, "abs": abs}


class Formula:
    def __init__(self, text: str | float | int) -> None:
        self.text = str(text)
        try:
            self._tree = ast.parse(self.text, mode="eval").body
        except SyntaxError as exc:
            raise ValueError(f"formula {self.text!r} does not parse: {exc.msg}") from None
        self.names = sorted(self._check(self._tree))

    def _check(self, node) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return set()
        if isinstance(node, ast.Name):
            return {node.id}
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return self._check(node.left) | self._check(node.right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._check(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
            names: set[str] = set()
            for arg in node.args:
                names |= self._check(arg)
            return names
        raise ValueError(f"formula {self.text!r}: only numbers, names, + - * / and min/max/abs are allowed")

    def __call__(self, **variables: float) -> float:
        missing = [n for n in self.names if n not in variables]
        if missing:
            raise ValueError(f"formula {self.text!r} needs {', '.join(missing)}")
        return float(self._eval(self._tree, variables))

    def _eval(self, node, v):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return v[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, v), self._eval(node.right, v))
        if isinstance(node, ast.UnaryOp):
            return -self._eval(node.operand, v)
        return _FUNCS[node.func.id](*(self._eval(a, v) for a in node.args))

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"
