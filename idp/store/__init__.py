"""The only SQL in idp: one module per aggregate, each taking an open AsyncSession."""
