"""Templates the agent tests pin their numbers to (frozen copies, not the shipped ones).

The shipped templates in ``site_templates/`` are calibrated against the phantoms
(``bench.calibration``) and change when the phantoms do; tests of the loop, the rule
policy, the guardrails, approval and memory assert on objective values, so they load the
frozen copy here instead.
"""

from __future__ import annotations

from pathlib import Path

from agent.templates import SiteTemplate, load_template

DATA_DIR = Path(__file__).parent / "data"


def frozen_prostate_template() -> SiteTemplate:
    """The prostate-basic template as of the first release (objectives at 0.90/0.70 Rx)."""
    return load_template(DATA_DIR / "prostate-basic-frozen.yaml")
