"""Pages for people: sign-in, sign-out and the account pages (INTERFACE §4)."""
