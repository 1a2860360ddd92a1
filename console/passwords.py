"""Password hashing with Argon2id (argon2-cffi's defaults, RFC 9106's second recommendation) and the hashing
of high-entropy tokens (session cookies, API tokens) with SHA-256, which needs no salt or stretching: a token
is 256 random bits, not a guess a person chose."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tapewatch.errors import TapewatchError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "WeakPasswordError",
    "check_strength",
    "hash_password",
    "needs_rehash",
    "new_token",
    "token_hash",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12
_HASHER = PasswordHasher()
#: verified against when the user does not exist, so an unknown name costs the same time as a wrong password
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class WeakPasswordError(TapewatchError, ValueError):
    """A password too short to be stored."""


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``stored_hash`` None (no such user) still spends one verification."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def new_token() -> str:
    """A random token for a cookie or an API client (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a token.

    >>> token_hash("abc") == token_hash("abc") != token_hash("abd")
    True
    """
    return hashlib.sha256(token.encode()).hexdigest()
