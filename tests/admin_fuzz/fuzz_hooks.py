"""Schemathesis hooks for the admin API fuzz stage (SCHEMATHESIS_HOOKS=fuzz_hooks, set by run_schemathesis.sh).

The import endpoint takes JSON Lines, which schemathesis cannot serialize by itself: its generated value (a string,
per the OpenAPI document) goes out as the body's text, so the fuzzer reaches the importer instead of stopping."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/jsonl", "application/x-ndjson", "application/x-jsonlines")
def json_lines(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, which the server must refuse cleanly.
        return value.encode("utf-8", "surrogatepass")
    return (json.dumps(value) + "\n").encode()
