"""A small subset of Lago's billable-metric expressions (the lago-expression crate).

Enough to emulate how an event fails when its metric's expression cannot be evaluated: numbers,
single-quoted strings, ``event.properties.<name>``, ``event.timestamp``, ``event.code``, + - * /,
parentheses, ``round(x[, digits])``, ``ceil(x)``, ``floor(x)`` and ``concat(...)``. A missing
property fails as Lago reports it: ``expression_evaluation_failed: Variable: <name> not found``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|'([^']*)'|([A-Za-z_][A-Za-z0-9_.]*)|(.))")


class ExpressionError(Exception):
    """Raised when an expression cannot be evaluated for an event."""


def evaluate(expression: str, properties: dict[str, Any], timestamp: int, code: str = "") -> Any:
    tokens = [m.groups() for m in _TOKEN.finditer(expression) if any(m.groups())]
    parser = _Parser(tokens, properties, timestamp, code)
    value = parser.sum()
    if parser.position != len(tokens):
        raise ExpressionError("expression_evaluation_failed: unexpected input")
    return str(value) if isinstance(value, Decimal) else value


class _Parser:
    def __init__(self, tokens: list[tuple], properties: dict[str, Any], timestamp: int, code: str):
        self.tokens, self.position = tokens, 0
        self.properties, self.timestamp, self.code = properties, timestamp, code

    def _peek(self) -> str | None:
        return self.tokens[self.position][3] if self.position < len(self.tokens) else None

    def _take(self, symbol: str) -> None:
        if self._peek() != symbol:
            raise ExpressionError(f"expression_evaluation_failed: expected {symbol!r}")
        self.position += 1

    def sum(self) -> Any:
        value = self.product()
        while self._peek() in ("+", "-"):
            operator = self._peek()
            self.position += 1
            value = _number(value) + _number(self.product()) * (1 if operator == "+" else -1)
        return value

    def product(self) -> Any:
        value = self.atom()
        while self._peek() in ("*", "/"):
            operator = self._peek()
            self.position += 1
            right = _number(self.atom())
            if operator == "/" and right == 0:
                raise ExpressionError("expression_evaluation_failed: division by zero")
            value = _number(value) * right if operator == "*" else _number(value) / right
        return value

    def atom(self) -> Any:
        if self.position >= len(self.tokens):
            raise ExpressionError("expression_evaluation_failed: unexpected end of expression")
        number, text, name, symbol = self.tokens[self.position]
        self.position += 1
        if number is not None:
            return Decimal(number)
        if text is not None:
            return text
        if symbol == "(":
            value = self.sum()
            self._take(")")
            return value
        if symbol == "-":
            return -_number(self.atom())
        if name is not None and self._peek() == "(":
            return self._call(name)
        if name is not None:
            return self._variable(name)
        raise ExpressionError(f"expression_evaluation_failed: unexpected {symbol!r}")

    def _call(self, name: str) -> Any:
        self._take("(")
        args = [self.sum()]
        while self._peek() == ",":
            self.position += 1
            args.append(self.sum())
        self._take(")")
        if name == "concat":
            return "".join(str(a) for a in args)
        if name == "round":
            return round(_number(args[0]), int(_number(args[1])) if len(args) > 1 else 0)
        if name in ("ceil", "floor"):
            return Decimal((math.ceil if name == "ceil" else math.floor)(_number(args[0])))
        raise ExpressionError(f"expression_evaluation_failed: unknown function {name}")

    def _variable(self, name: str) -> Any:
        if name == "event.timestamp":
            return Decimal(self.timestamp)
        if name == "event.code":
            return self.code
        prefix = "event.properties."
        if name.startswith(prefix):
            key = name[len(prefix):]
            if key in self.properties and self.properties[key] is not None:
                return self.properties[key]
            raise ExpressionError(f"expression_evaluation_failed: Variable: {key} not found")
        raise ExpressionError(f"expression_evaluation_failed: unknown variable {name}")


def _number(value: Any) -> Decimal:
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ExpressionError(f"expression_evaluation_failed: {value!r} is not a number") from None
