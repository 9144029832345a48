"""Pure primitives: no database, no HTTP."""
