"""Forms are read by the one parameter reader (idp.web.params); these names are kept for the page modules."""

from __future__ import annotations

from idp.web.params import FormError, read_form

__all__ = ["FormError", "read_form"]
