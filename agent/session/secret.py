"""The per-installation secret: the key of journal HMAC chains and of case pseudonyms.

Where it lives (never inside a session directory):

1. ``$RTPLAN_SECRET_FILE`` if set;
2. else ``$XDG_CONFIG_HOME/rtplan/secret`` if ``XDG_CONFIG_HOME`` is set to an absolute path;
3. else ``~/.config/rtplan/secret``.

It is created on first use by a writer (a new session): 32 random bytes, hex-encoded, in a
file of mode 0600 (its directory 0700), created exclusively so that two processes starting
at once agree on one secret. A secret file readable or writable by group or others is
refused (``chmod 600`` it). Readers (report, replay, show) never create it: without a
secret a journal is reported as not verifiable here.

Keys are derived per purpose (:func:`derive_key`), so the chain key and the pseudonym key
differ; :func:`key_id` is a public fingerprint stored in journal headers, which tells a
journal of another installation from a tampered one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from agent.session.errors import SecretError
from rtplan_common.atomic_io import describe_os_error

#: Environment variable naming the secret file.
SECRET_ENV = "RTPLAN_SECRET_FILE"
#: Random bytes of a new secret.
SECRET_BYTES = 32
_FIX = f"set ${SECRET_ENV} to a file of your own (mode 0600)"


def default_secret_path() -> Path:
    """The secret file of this installation (see the module docstring for the rule)."""
    env = os.environ.get(SECRET_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "rtplan" / "secret"


def _check_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretError(
            f"the rtplan secret {str(path)!r} is accessible by group or others (mode "
            f"{mode:04o}); it keys the journals' tamper evidence: run `chmod 600 {path}`"
        )


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        data = secrets.token_hex(SECRET_BYTES).encode("ascii") + b"\n"
        if os.write(fd, data) != len(data):
            raise OSError(5, "short write")
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def load_secret(path: Path | None = None, *, create: bool = True) -> bytes | None:
    """The installation secret (raw bytes), creating it if missing and ``create``.

    Returns ``None`` when the file does not exist and ``create`` is false.

    Raises
    ------
    SecretError
        If the file is readable by group or others, too short, or cannot be created
        or read (the message names the file and what to do).
    """
    file = default_secret_path() if path is None else Path(path)
    try:
        if not file.exists():
            if not create:
                return None
            with contextlib.suppress(FileExistsError):  # another process was first: use theirs
                _create(file)
        _check_mode(file)
        text = file.read_text(encoding="ascii").strip()
    except SecretError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        why = describe_os_error(exc) if isinstance(exc, OSError) else "not a hex secret"
        raise SecretError(f"cannot use the rtplan secret {str(file)!r}: {why}; {_FIX}") from exc
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = text.encode("utf-8")
    if len(raw) < 16:
        raise SecretError(
            f"the rtplan secret {str(file)!r} is too short ({len(raw)} bytes, at least 16); {_FIX}"
        )
    return raw


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose (``"journal-chain"``, ``"pseudonym"``) derived from the secret."""
    return hmac.new(secret, f"rtplan/{purpose}/v1".encode(), hashlib.sha256).digest()


def key_id(secret: bytes) -> str:
    """Public fingerprint of a secret (16 hex digits): which installation wrote a journal."""
    return derive_key(secret, "key-id").hex()[:16]


def writer_secret(path: Path | None = None) -> bytes:
    """The installation secret for a writer: created on first use (see :func:`load_secret`)."""
    secret = load_secret(path, create=True)
    assert secret is not None  # created above
    return secret
