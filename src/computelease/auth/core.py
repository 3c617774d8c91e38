"""Pure auth primitives: roles, principals, token and password hashing."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "cl_"  # noqa: S105  (a visible prefix, not a secret)
_hasher = PasswordHasher()


class Role(StrEnum):
    admin = "admin"
    operator = "operator"
    customer = "customer"
    lessor = "lessor"


STAFF = frozenset({Role.admin, Role.operator})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request or command, and what it may see."""

    role: Role
    actor: str  # how the audit log names it, e.g. "token:7:ci" or "user:alice"
    customer_id: int | None = None
    lessor_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


SYSTEM = Principal(role=Role.admin, actor="system")


def new_token() -> str:
    """A random bearer token; 256 bits from the OS generator."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough; a slow one would only slow every request."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so timing does not reveal which usernames do.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class LoginThrottle:
    """Slows password guessing: after ``limit`` failures for one username (or one client address)
    within ``window_s``, further attempts are refused until the window has passed.

    Kept in memory per process: a restart forgets it, which only ever errs towards letting people in.
    """

    def __init__(self, limit: int = 5, window_s: float = 900.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        cutoff = self.clock() - self.window_s
        kept = [t for t in self._failures.get(key, []) if t > cutoff]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def retry_after(self, *keys: str) -> float:
        """Seconds until an attempt is allowed again; 0 when it is allowed now."""
        wait = 0.0
        for key in keys:
            recent = self._recent(key)
            if len(recent) >= self.limit:
                wait = max(wait, recent[-self.limit] + self.window_s - self.clock())
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._recent(key)
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
