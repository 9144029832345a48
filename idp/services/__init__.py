"""The rules: services decide, the store persists, handlers only parse and render."""
