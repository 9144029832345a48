"""User accounts: validation of email, name and password, and creation with an argon2id hash."""

from __future__ import annotations

import re
import uuid

from idp.auth.passwords import MAX_PASSWORD_LENGTH, PasswordPool
from idp.clock import Clock
from idp.errors import InvalidInput
from idp.store import users as store
from idp.store.db import Database
from idp.store.models import User

MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200
MIN_PASSWORD_LENGTH = 8  # NIST SP 800-63B §5.1.1.2
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    """The form emails are compared in: trimmed and lower-cased."""
    return email.strip().lower()


def check_email(email: str) -> str:
    """Return the trimmed email, or raise InvalidInput saying what is wrong with it."""
    email = email.strip()
    if not email:
        raise InvalidInput("email is required")
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidInput("email is not a valid address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


def check_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 for c in name):
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} printable characters")
    return name


class UserService:
    """Create and look up people."""

    def __init__(self, db: Database, passwords: PasswordPool, clock: Clock) -> None:
        self._db = db
        self._passwords = passwords
        self._clock = clock

    async def create(self, email: str, *, name: str = "", password: str | None = None) -> User:
        """Create a user; InvalidInput for a bad field, Conflict for a taken email."""
        email = check_email(email)
        name = check_name(name)
        password_hash = None
        if password is not None:
            check_password(password)
            password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        user = User(
            id=str(uuid.uuid4()),
            email=email,
            email_norm=normalize_email(email),
            name=name,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            return await store.insert_user(session, user)
