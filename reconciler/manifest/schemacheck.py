"""The JSON Schema's verdict on a configuration, for what reading it did not already catch
(ranges, lengths, required fields), worded like every other problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.manifest.fieldfacts import RANGE_HINTS
from reconciler.manifest.reader import DocumentReader
from reconciler.manifest.tree import fits, validator


def check_schema(d: DocumentReader, config: Mapping[str, Any]) -> None:
    """Report each schema error at its field, unless that field already had a problem."""
    if fits()(config):
        return
    for error in sorted(
        validator().iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        path = ".".join(str(p) for p in error.absolute_path)
        if d.failed_under(path) or any(path.startswith(p + ".") for p in d.failed_paths if p):
            continue
        if error.validator == "required":
            missing = [r for r in error.validator_value if r not in error.instance]
            key = d.key_nodes.get(path)
            where = d.where(path) if key is None else d.loc(key)
            for name in missing:
                d.add(where, path, f"'{name}' is missing", f"add {name}: ...")
            continue
        d.fail(path, *_worded(error, d.raw.get(path, json.dumps(error.instance))))


def _worded(error: Any, shown: str) -> tuple[str, str | None]:
    """The message and hint for one schema error (not `required`)."""
    validator, limit = error.validator, error.validator_value
    if validator == "maximum":
        hint = RANGE_HINTS.get(".".join(str(p) for p in error.absolute_path))
        return f"{shown} is above the maximum of {limit}", hint or f"write at most {limit}"
    if validator == "minimum":
        return f"{shown} is below the minimum of {limit}", f"write at least {limit}"
    if validator == "maxLength":
        return (
            f"the text is {len(error.instance)} characters long",
            f"shorten it to at most {limit} characters",
        )
    if validator == "minLength":
        return "the text is empty", "write a value"
    if validator == "enum":
        return f"unknown value {shown}", f"write one of: {', '.join(limit)}"
    if validator == "pattern":
        return f"'{error.instance}' is not valid here", None
    return error.message, None
