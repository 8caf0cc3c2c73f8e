"""Strict JSON for every API: the default parser (REST_FRAMEWORK) and ``strict_loads``
for views that read their body themselves.

Python's ``json`` reads ``NaN``, ``Infinity`` and numbers like ``1e400`` (which
overflow to infinity) as floats that no JSON column, JSON answer or comparison can
hold, and recurses once per level of nesting (a body of 50,000 ``[`` is a
RecursionError). Both are refused here, with a 400 saying where.
"""

import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deeper than any body these APIs take, shallow enough for code that recurses.
MAX_DEPTH = 32

_Path = tuple[str | int, ...]


def strict_loads(raw: str | bytes) -> Any:
    """``raw`` as JSON; ParseError (400) for malformed JSON, a number that is not
    finite, or nesting deeper than MAX_DEPTH."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ParseError(_too_deep()) from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError too
        raise ParseError(f"JSON parse error - {error}") from None
    if _unacceptable(data):
        raise ParseError(_problem(data))
    return data


def _unacceptable(data: Any) -> bool:
    """Whether parsed ``data`` holds a number that is not finite or nests deeper than
    MAX_DEPTH. Iterative (the depth is what is checked), and on the exact types
    ``json`` builds: it runs on every request body."""
    if type(data) is float:
        return not math.isfinite(data)
    stack = [(data, 1)] if type(data) is dict or type(data) is list else []
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for item in value.values() if type(value) is dict else value:
            kind = type(item)
            if kind is float:
                if not math.isfinite(item):
                    return True
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
    return False


def _problem(data: Any) -> str:
    """What ``_unacceptable`` found, and where (only ever run on a refused body)."""
    stack: list[tuple[Any, _Path]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            return _too_deep()
        if isinstance(value, float) and not math.isfinite(value):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            return (
                f"JSON parse error - {where.lstrip('.') or 'the body'}: numbers must be "
                "finite (no NaN, Infinity or 1e400)."
            )
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((item, (*path, key)) for key, item in reversed(list(items)))
    return _too_deep()


def _too_deep() -> str:
    return f"JSON parse error - nested deeper than {MAX_DEPTH} levels."


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, with ``strict_loads``'s rules."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            # bytes.decode takes text encodings only: no charset=bz2_codec bombs.
            text = stream.read().decode(encoding)
        except LookupError:
            raise ParseError(f"Unsupported charset {encoding!r}.") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        return strict_loads(text)
