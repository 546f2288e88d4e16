"""Trained DRL policy files with their provenance, loaded only when their sha256 matches.

A policy is two files side by side: ``<name>.zip`` (stable-baselines3's archive: it holds
pickles, which run code when loaded) and ``<name>.json`` (:class:`PolicyProvenance`: what it
was trained on and the zip's sha256). :func:`verified_zip` refuses a zip whose sha256 differs
from the recorded one, or one trained for another template or engine version, before anything
unpickles it. Shipped policies live in ``site_templates/drl/<template>.zip`` (installed with the
package); :func:`shipped_policy` finds them.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from agent.templates.loader import TEMPLATE_PACKAGE
from rtplan_common.atomic_io import write_text_atomic
from rtplan_common.models import FrozenModel

#: Where the shipped policies are (``site_templates/drl``, installed with the package).
SHIPPED_DIR = Path(str(resources.files(TEMPLATE_PACKAGE))) / "drl"


class PolicyFileError(RuntimeError):
    """A policy file is missing, tampered with, or trained for something else."""


class PolicyProvenance(FrozenModel):
    """What a trained policy was trained on and how (the ``.json`` beside its ``.zip``).

    Attributes
    ----------
    scenario, template, template_hash : the case family and the template
        (:func:`agent.session.identity.template_hash`).
    engine_version : the dose engine's version (the TPS backend's ``engine_version``).
    algorithm : ``dqn``.
    library_versions : stable-baselines3, torch, gymnasium.
    seeds : the training case seeds.
    steps, episodes, wall_time_s, cpu_time_s : training totals over every run (checkpoint
        resumes included); CPU time of the training process (its share of a loaded machine).
    runs : how many runs the training was spread across.
    env : the environment settings (grid, optimizer iterations, steps per episode).
    tpps : the TPP names, in action order (action ``2 i`` raises TPP ``i``, ``2 i + 1`` lowers it).
    observation_size : length of the observation vector.
    training_success_rate : share of the last episodes that reached the maximum score.
    sha256 : the zip's sha256 (hex).
    """

    scenario: str
    template: str
    template_hash: str
    engine_version: str
    algorithm: str = "dqn"
    library_versions: dict[str, str] = Field(default_factory=dict)
    seeds: list[int]
    steps: Annotated[int, Field(ge=0)]
    episodes: Annotated[int, Field(ge=0)] = 0
    wall_time_s: Annotated[float, Field(ge=0.0)] = 0.0
    cpu_time_s: Annotated[float, Field(ge=0.0)] = 0.0
    runs: Annotated[int, Field(ge=0)] = 1
    env: dict[str, Any] = Field(default_factory=dict)
    tpps: list[str]
    observation_size: Annotated[int, Field(ge=1)]
    training_success_rate: float | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def sha256_of(path: Path) -> str:
    """The sha256 (hex) of the file ``path`` (policy files are small: read at once)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance_path(zip_path: Path) -> Path:
    """The provenance file beside ``zip_path``."""
    return zip_path.with_suffix(".json")


def write_provenance(zip_path: Path, provenance: PolicyProvenance) -> Path:
    """Write ``provenance`` beside ``zip_path`` with the zip's current sha256; returns its path."""
    record = provenance.model_copy(update={"sha256": sha256_of(zip_path)})
    path = provenance_path(zip_path)
    write_text_atomic(path, record.model_dump_json(indent=2) + "\n")
    return path


def read_provenance(zip_path: Path) -> PolicyProvenance:
    """The provenance recorded beside ``zip_path``.

    Raises
    ------
    PolicyFileError
        When it is missing or not a provenance record.
    """
    path = provenance_path(zip_path)
    try:
        return PolicyProvenance.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyFileError(
            f"{path} is missing: a policy is loaded only with its provenance and sha256 "
            "(train one with: rtplan drl train)"
        ) from None
    except ValueError as exc:
        raise PolicyFileError(f"{path} is not a policy provenance record: {exc}") from exc


def verified_zip(
    zip_path: Path,
    template_hash: str | None = None,
    engine_version: str | None = None,
) -> PolicyProvenance:
    """The provenance of ``zip_path`` once the zip's sha256 matches it (and, when given, the
    template hash and engine version); nothing is unpickled here.

    Raises
    ------
    PolicyFileError
        For a missing zip, a sha256 that differs from the recorded one, or a policy trained
        for another template or engine version (the message says which and what to do).
    """
    if not zip_path.is_file():
        raise PolicyFileError(f"no trained policy at {zip_path} (train one with: rtplan drl train)")
    prov = read_provenance(zip_path)
    actual = sha256_of(zip_path)
    if actual != prov.sha256:
        raise PolicyFileError(
            f"refusing to load {zip_path}: its sha256 {actual[:16]}... differs from the recorded "
            f"{prov.sha256[:16]}... in {provenance_path(zip_path).name} (the file holds pickles, "
            "which run code when loaded); restore the file or retrain"
        )
    if template_hash is not None and prov.template_hash != template_hash:
        raise PolicyFileError(
            f"{zip_path} was trained for template {prov.template!r} with hash "
            f"{prov.template_hash}, not {template_hash}: retrain it (rtplan drl train)"
        )
    if engine_version is not None and prov.engine_version != engine_version:
        raise PolicyFileError(
            f"{zip_path} was trained on engine version {prov.engine_version}, the TPS runs "
            f"{engine_version}: retrain it (rtplan drl train)"
        )
    return prov


def shipped_policy(template_name: str) -> Path:
    """The shipped policy zip of ``template_name`` (it may not exist)."""
    return SHIPPED_DIR / f"{template_name}.zip"
