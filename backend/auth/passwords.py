"""Password hashing (argon2id) and the strength rule for staff passwords.

Parameters for a 2-core server: argon2id, time_cost=3, memory_cost=64 MiB, parallelism=2
(RFC 9106's second recommended option with parallelism matched to the cores). One verification
takes about 110 ms on the 2-core reference machine and 64 MiB for that time; login is rate
limited, so this bounds what an attacker can make the server spend. Tests use cheap parameters
(the parameters are stored in each hash, so a hash made with either verifies with either).

Strength follows NIST SP 800-63B: length over composition rules, and no well-known password.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SERVER_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2, type=Type.ID)
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)

MIN_LENGTH = 12
MAX_LENGTH = 128

# A short list of the passwords that top every breach corpus (and their French favourites).
_COMMON = frozenset(
    [
        "123456789012",
        "password1234",
        "motdepasse123",
        "azertyuiop12",
        "qwertyuiop12",
        "administrator",
        "changeme1234",
        "welcome12345",
        "bonjour12345",
        "soleil123456",
        "password123!",
        "iloveyou1234",
        "123456123456",
        "111111111111",
        "000000000000",
        "abcdefghijkl",
        "abc123abc123",
        "passwordpassword",
        "qwerty123456",
        "azerty123456",
        "hopital12345",
        "hospital1234",
        "infirmiere12",
        "radiologie12",
    ]
)


def hasher(fast: bool) -> PasswordHasher:
    return TEST_HASHER if fast else SERVER_HASHER


def password_problems(password: str, email: str = "") -> list[str]:
    """Why a password is refused; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"it must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"it must have at most {MAX_LENGTH} characters")
    if password.lower() in _COMMON:
        problems.append("it is one of the most common passwords")
    if len(set(password)) < 5:
        problems.append("it repeats too few different characters")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in password.lower():
        problems.append("it contains the e-mail address")
    return problems


def hash_password(password: str, fast: bool = False) -> str:
    return hasher(fast).hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return SERVER_HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, fast: bool = False) -> bool:
    return hasher(fast).check_needs_rehash(stored_hash)


@functools.cache
def dummy_hash(fast: bool = False) -> str:
    """Verified against when the e-mail is unknown, so that an unknown account costs the same
    time as a wrong password (no user enumeration by timing). Made once, on first use."""
    return hasher(fast).hash("not-a-real-password-used-for-timing-only")
