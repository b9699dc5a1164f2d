"""The API query stack machine (``?name``, ``?-name``, ``?=name=v``, ``?<``, ``?>``, ``?#ops``).

Each item is evaluated on its own. The stack starts as an infinite supply of ``true``; the item matches
unless a ``false`` remains at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lab.routeros.errors import Trap

Op = Literal["has", "lacks", "eq", "lt", "gt", "ops"]
Comparator = Callable[[str, str, str], int]
"""``compare(name, item_value, query_value)`` -> negative, zero or positive."""


@dataclass(frozen=True)
class QueryWord:
    op: Op
    name: str = ""
    value: str = ""


def parse_query(words: Sequence[str]) -> list[QueryWord]:
    """Parse the ``?`` words of a request (in order). Raises :class:`Trap` for a malformed word."""
    parsed: list[QueryWord] = []
    for word in words:
        body = word[1:]
        if body.startswith("#"):
            ops = body[1:]
            if any(not (ch.isdigit() or ch in "!&|.") for ch in ops):
                raise Trap(f"unknown query operation {ops}")
            parsed.append(QueryWord("ops", value=ops))
        elif body.startswith("-"):
            parsed.append(QueryWord("lacks", name=body[1:]))
        elif body[:1] in ("<", ">", "="):
            name, sep, value = body[1:].partition("=")
            if not sep:
                raise Trap(f"invalid query word {word}")
            op: Op = {"<": "lt", ">": "gt", "=": "eq"}[body[0]]  # type: ignore[assignment]
            parsed.append(QueryWord(op, name=name, value=value))
        elif "=" in body:
            name, _, value = body.partition("=")
            parsed.append(QueryWord("eq", name=name, value=value))
        else:
            parsed.append(QueryWord("has", name=body))
    return parsed


class _Stack:
    """A stack with an infinite supply of ``True`` underneath."""

    def __init__(self) -> None:
        self.values: list[bool] = []

    def push(self, value: bool) -> None:
        self.values.append(value)

    def pop(self) -> bool:
        return self.values.pop() if self.values else True

    def peek(self, index: int) -> bool:
        if index < len(self.values):
            return self.values[-1 - index]
        return True


def _run_ops(stack: _Stack, ops: str) -> None:
    position = 0
    previous_was_index = False
    while position < len(ops):
        char = ops[position]
        if char.isdigit():
            end = position
            while end < len(ops) and ops[end].isdigit():
                end += 1
            value = stack.peek(int(ops[position:end]))
            if end == len(ops):
                stack.values = [value]
            else:
                stack.push(value)
            position = end
            previous_was_index = True
            continue
        if char == "!":
            stack.push(not stack.pop())
        elif char == "&":
            right, left = stack.pop(), stack.pop()
            stack.push(left and right)
        elif char == "|":
            right, left = stack.pop(), stack.pop()
            stack.push(left or right)
        elif char == "." and not previous_was_index:
            stack.push(stack.peek(0))
        previous_was_index = False
        position += 1


def matches(query: Sequence[QueryWord], item: Mapping[str, str], compare: Comparator) -> bool:
    """Evaluate a parsed query against one printed item."""
    if not query:
        return True
    stack = _Stack()
    for word in query:
        if word.op == "ops":
            _run_ops(stack, word.value)
        elif word.op == "has":
            stack.push(word.name in item)
        elif word.op == "lacks":
            stack.push(word.name not in item)
        else:
            present = item.get(word.name)
            if present is None:
                # An unset property equals the empty value and is neither less nor greater than anything.
                stack.push(word.op == "eq" and word.value == "")
                continue
            order = compare(word.name, present, word.value)
            if word.op == "eq":
                stack.push(order == 0)
            elif word.op == "lt":
                stack.push(order < 0)
            else:
                stack.push(order > 0)
    return all(stack.values)
