"""Validation errors in plain words: what was wrong, where, and what to send instead.

``describe`` turns FastAPI's ``RequestValidationError`` into ``{"detail": [...], "message": ...}``:
invalid JSON names the line and column, a body that was not sent as JSON says to send
``Content-Type: application/json``, and a field of the wrong type names the field, the type
expected and the JSON type received. The input itself is never echoed: it may be a note.
"""

from __future__ import annotations

from typing import Any

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_attributes_type": "an object",
    "model_type": "an object",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "datetime_type": "a date-time (ISO 8601)",
    "datetime_parsing": "a date-time (ISO 8601)",
}


def json_type(value: Any) -> str:
    """The JSON name of a value's type (never the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes | bytearray):
        return "a body that is not JSON"
    return type(value).__name__


def where(loc: list[str]) -> str:
    if not loc:
        return "the request"
    head, rest = loc[0], loc[1:]
    if head == "body":
        return f"field '{'.'.join(rest)}'" if rest else "the body"
    if head in ("query", "path", "header"):
        return f"{head} parameter '{'.'.join(rest)}'"
    return ".".join(loc)


def line_col(body: Any, pos: int) -> tuple[int, int]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
    before = text[:pos]
    return before.count("\n") + 1, pos - (before.rfind("\n") + 1) + 1


def describe_one(err: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
    loc = [str(p) for p in err.get("loc", ())]
    kind = str(err.get("type", "invalid"))
    msg = str(err.get("msg", "invalid"))
    if kind == "json_invalid":
        pos = int(loc[1]) if len(loc) > 1 and loc[1].isdigit() else 0
        line, col = line_col(body, pos) if body is not None else (1, pos + 1)
        reason = err.get("ctx", {}).get("error", "parse error")
        msg = (
            f"the body is not valid JSON: {reason} at line {line}, column {col}. "
            "Send one JSON object, with strings in double quotes"
        )
        return {"loc": ["body"], "msg": msg, "type": kind}
    if loc == ["body"] and kind in ("model_attributes_type", "dict_type", "model_type"):
        if "json" not in content_type:
            got = f"'{content_type}'" if content_type else "none"
            msg = (
                "send the body as JSON with the header 'Content-Type: application/json' "
                f"(Content-Type received: {got})"
            )
        else:
            msg = f"the body must be a JSON object {{...}}, not {json_type(err.get('input'))}"
        return {"loc": loc, "msg": msg, "type": kind}
    if kind == "missing":
        msg = f"{where(loc)} is required"
    elif kind in _EXPECTED:
        msg = f"{where(loc)}: expected {_EXPECTED[kind]}, got {json_type(err.get('input'))}"
    else:
        msg = f"{where(loc)}: {msg}"
    return {"loc": loc, "msg": msg, "type": kind}


def describe(errors: list[dict[str, Any]], content_type: str, body: Any = None) -> dict[str, Any]:
    out = [describe_one(e, content_type.lower(), body) for e in errors]
    unique = list(dict.fromkeys(e["msg"] for e in out))
    return {"detail": out, "message": "; ".join(unique)}
