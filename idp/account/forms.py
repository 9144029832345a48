"""Strict reading of url-encoded forms: bounded, UTF-8 only, no repeated fields."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request


class FormError(Exception):
    """The form could not be read; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_form(request: Request, limits: dict[str, int]) -> dict[str, str]:
    """The fields named in `limits` (name -> maximum length); other fields are ignored.

    Missing fields read as "". Raises FormError for a wrong content type, bytes that are not UTF-8, a field
    given twice or a value over its limit.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError("the form must be sent as application/x-www-form-urlencoded", 415)
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=len(limits) + 10,
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form is not valid UTF-8 url-encoded data") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in limits:
            continue
        if name in values:
            raise FormError(f"the field {name} was sent more than once")
        if len(value) > limits[name] or "\x00" in value:
            raise FormError(f"the field {name} is too long or malformed")
        values[name] = value
    return {name: values.get(name, "") for name in limits}
