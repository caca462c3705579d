"""Password hashing with argon2id.

The cost is a setting (`LOOPLINE_PASSWORD_HASH_TIME_COST`, `…_MEMORY_KIB`) because the
right value depends on the hardware; the defaults are argon2-cffi's (RFC 9106's low-memory
profile). Verification reads the parameters from each stored hash, so raising the cost
later does not lock anybody out.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from loopline.core.settings import Settings

_verifier = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user like a real one.
_DUMMY_HASH = _verifier.hash("loopline-no-such-user")


@cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def hash_password(password: str, settings: Settings) -> str:
    return _hasher(settings.password_hash_time_cost, settings.password_hash_memory_kib).hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _verifier.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
