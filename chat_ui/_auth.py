"""Who may open the app when it listens on the network, and what each role sees.

A users file holds one user per line, ``username:role:hash``, where the hash
is ``pbkdf2_sha256$iterations$salt$digest`` (``sparkify app-user`` makes
such a line) and the role is ``agent`` (sees customers' names) or
``analyst`` (names hidden). Blank lines and ``#`` comments are skipped.
A single user can come from the environment instead:
``SPARKIFY_APP_USERNAME``, ``SPARKIFY_APP_PASSWORD`` and optionally
``SPARKIFY_APP_ROLE``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PASSWORD_ENV",
    "ROLES",
    "ROLE_ENV",
    "USERNAME_ENV",
    "USERS_FILE_ENV",
    "AuthError",
    "User",
    "Users",
    "check_serving",
    "hash_password",
    "load_users",
]

USERNAME_ENV = "SPARKIFY_APP_USERNAME"
PASSWORD_ENV = "SPARKIFY_APP_PASSWORD"
ROLE_ENV = "SPARKIFY_APP_ROLE"
USERS_FILE_ENV = "SPARKIFY_APP_USERS_FILE"
# Each role, and whether it sees customers' names.
ROLES = {"agent": True, "analyst": False}
_ITERATIONS = 240_000


class AuthError(ValueError):
    """The users file or the environment does not define usable users."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    @property
    def sees_names(self) -> bool:
        return ROLES[self.role]


@dataclass(frozen=True)
class Users:
    """The users allowed in, by name."""

    by_name: Mapping[str, User]
    source: str

    def check(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s (in constant time)."""
        user = self.by_name.get(username)
        if user is None:
            # Spend the same time on unknown names as on known ones.
            _verify(password, hash_password("", iterations=_ITERATIONS))
            return False
        return _verify(password, user.password_hash)

    def sees_names(self, username: str | None) -> bool:
        user = self.by_name.get(username or "")
        return user.sees_names if user else False


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    """``pbkdf2_sha256$iterations$salt$digest`` for a users file."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(salt), iterations
    )
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def _verify(password: str, stored: str) -> bool:
    scheme, iterations, salt, digest = stored.split("$")
    computed = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
    )
    return scheme == "pbkdf2_sha256" and hmac.compare_digest(computed.hex(), digest)


def load_users(path: Path | None = None) -> Users | None:
    """The users of ``path`` (else ``SPARKIFY_APP_USERS_FILE``), else of the env.

    None when neither names any user. Raises ``AuthError`` naming the file
    and line (or the variable) of anything unusable.
    """
    path = path or (
        Path(os.environ[USERS_FILE_ENV]) if os.environ.get(USERS_FILE_ENV) else None
    )
    if path is not None:
        return _from_file(path)
    username = os.environ.get(USERNAME_ENV, "")
    password = os.environ.get(PASSWORD_ENV, "")
    if not username and not password:
        return None
    if not username or not password:
        missing = USERNAME_ENV if not username else PASSWORD_ENV
        raise AuthError(
            f"{missing} is not set; set both {USERNAME_ENV} and {PASSWORD_ENV}"
        )
    role = os.environ.get(ROLE_ENV, "agent")
    if role not in ROLES:
        raise AuthError(
            f"{ROLE_ENV}={role!r} is not a role; use one of {sorted(ROLES)}"
        )
    user = User(username, role, hash_password(password))
    return Users({username: user}, f"the environment ({USERNAME_ENV})")


def _from_file(path: Path) -> Users:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise AuthError(
            f"cannot read the users file {path}: {error.strerror}"
        ) from None
    users: dict[str, User] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        parts = line.split(":")
        if len(parts) != 3 or not all(parts):
            raise AuthError(
                f"{where}: expected username:role:hash (make a line with "
                "`sparkify app-user NAME`)"
            )
        name, role, password_hash = parts
        if role not in ROLES:
            raise AuthError(f"{where}: role {role!r} is not one of {sorted(ROLES)}")
        fields = password_hash.split("$")
        if len(fields) != 4 or fields[0] != "pbkdf2_sha256" or not fields[1].isdigit():
            raise AuthError(
                f"{where}: the hash must look like "
                "pbkdf2_sha256$iterations$salt$digest (make one with "
                "`sparkify app-user NAME`)"
            )
        if name in users:
            raise AuthError(f"{where}: user {name!r} is listed twice")
        users[name] = User(name, role, password_hash)
    if not users:
        raise AuthError(f"{path} lists no users; add one with `sparkify app-user NAME`")
    return Users(users, str(path))


def check_serving(host: str, port: int, users: Users | None) -> None:
    """Raise ``ValueError`` unless the app may listen on ``host``:``port``.

    Any address but loopback needs ``users``: the app shows customers' data.
    """
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    if users is None and not _is_loopback(host):
        raise ValueError(
            f"host {host!r} opens the app to the network, which needs a username "
            "and password: set SPARKIFY_APP_USERNAME and SPARKIFY_APP_PASSWORD, or "
            "give --users-file"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
