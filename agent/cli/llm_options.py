"""The ``--policy llm`` options of ``rtplan plan`` and the policy they build.

A missing key, a cloud URL that is not allowed, an unknown model or an unreachable server
is reported here, before the case is opened and before anything touches the plan.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.policies import Policy
from agent.templates import SiteTemplate

ProviderOption = Annotated[
    str,
    typer.Option(
        help="LLM provider: anthropic (Claude) or openai-compatible (vLLM, Ollama, llama.cpp).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(help="Model name. Default: the provider's default.", show_default=False),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        help="Server URL (an OpenAI-compatible server: http://host:port/v1).", show_default=False
    ),
]
LookaheadOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=10,
        help="Look-ahead trials per iteration (each is one optimization). Default: 2 on the "
        "simulated TPS.",
        show_default=False,
    ),
]
TwoRoleOption = Annotated[
    bool, typer.Option("--two-role", help="An evaluator call critiques before the planner call.")
]
FallbackOption = Annotated[
    str,
    typer.Option(help="Policy when the model's output cannot be repaired: none or rule."),
]
AllowCloudOption = Annotated[
    bool,
    typer.Option(
        "--allow-cloud",
        help="Allow sending de-identified plan data to a server off this workstation.",
    ),
]
ImagesOption = Annotated[
    bool,
    typer.Option(
        "--images",
        help="Send a dose-plane image of the current plan with each iteration (multimodal models).",
    ),
]
ReferenceOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--reference-session",
        help="An earlier session of the same site whose best plan the model sees as an "
        "example (repeat, at most 3).",
        show_default=False,
    ),
]
KnowledgeOption = Annotated[
    Path | None,
    typer.Option(
        "--knowledge-card",
        help="A text file of knowledge of the site's parameters, shown to the model as data.",
        show_default=False,
    ),
]
KnowledgeFlagOption = Annotated[
    bool,
    typer.Option(
        "--knowledge",
        help="Show the model the installed knowledge card of the plan's site "
        "(site_templates/knowledge; refused if made for another template or engine).",
    ),
]
OnPremOption = Annotated[
    list[str] | None,
    typer.Option(
        "--on-premise-host",
        help="A host name that counts as on-premise (repeat).",
        show_default=False,
    ),
]

#: Look-ahead trials per iteration on the simulated TPS (on Eclipse each is a real
#: optimization: 0 unless configured).
SIMULATED_LOOKAHEAD = 2


@dataclass(frozen=True)
class LlmChoice:
    """What the user chose on the command line for the LLM policy."""

    provider: str = "anthropic"
    model: str | None = None
    base_url: str | None = None
    lookahead: int | None = None
    two_role: bool = False
    fallback: str = "none"
    allow_cloud: bool = False
    on_premise_hosts: tuple[str, ...] = ()
    images: bool = False
    reference_sessions: tuple[Path, ...] = ()
    knowledge_card: Path | None = None
    knowledge: bool = False

    def lookahead_trials(self) -> int:
        """Trials per iteration on the simulated TPS."""
        return SIMULATED_LOOKAHEAD if self.lookahead is None else self.lookahead


def _knowledge_card(path: Path | None) -> str | None:
    from agent.cli.errors import CliError
    from agent.policies.llm.prompt_system import KNOWLEDGE_CHARS

    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--knowledge-card {path}: cannot read it as UTF-8 text: {exc}") from exc
    if not text.strip():
        raise CliError(f"--knowledge-card {path} is empty")
    if len(text) > KNOWLEDGE_CHARS:
        raise CliError(
            f"--knowledge-card {path} has {len(text)} characters, more than {KNOWLEDGE_CHARS}: "
            "shorten it (it is sent with every call, never cut)"
        )
    return text


def _card_text(choice: LlmChoice, template: SiteTemplate) -> str | None:
    """The knowledge text of ``--knowledge-card FILE`` or ``--knowledge`` (not both)."""
    from agent.cli.errors import CliError
    from agent.cli.knowledge import installed_card_text

    if choice.knowledge and choice.knowledge_card is not None:
        raise CliError("use --knowledge (the site's installed card) or --knowledge-card FILE")
    if choice.knowledge:
        return installed_card_text(template)
    return _knowledge_card(choice.knowledge_card)


def build_llm_policy(choice: LlmChoice, session_dir: Path, template: SiteTemplate) -> Policy:
    """The recording LLM policy of a new session, its provider built and probed."""
    from agent.cli.errors import CliError
    from agent.policies.llm.errors import LlmConfigError
    from agent.policies.llm.providers.base import ProviderSettings
    from agent.policies.llm.references import reference_plan_texts
    from agent.policies.llm.settings import LlmSettings
    from agent.policies.llm.wiring import recording_policy

    if choice.provider not in ("anthropic", "openai-compatible"):
        raise CliError(
            f"unknown --provider {choice.provider!r}: use anthropic or openai-compatible"
        )
    if choice.fallback not in ("none", "rule"):
        raise CliError(f"unknown --fallback {choice.fallback!r}: use none or rule")
    provider: Literal["anthropic", "openai-compatible"] = (
        "anthropic" if choice.provider == "anthropic" else "openai-compatible"
    )
    fallback: Literal["none", "rule"] = "rule" if choice.fallback == "rule" else "none"
    try:
        references = reference_plan_texts(list(choice.reference_sessions), template)
    except LlmConfigError as exc:
        raise CliError(f"--reference-session: {exc}") from exc
    settings = LlmSettings(
        provider=ProviderSettings(
            provider=provider,
            model=choice.model,
            base_url=choice.base_url,
            allow_cloud=choice.allow_cloud,
            on_premise_hosts=list(choice.on_premise_hosts),
        ),
        two_role=choice.two_role,
        fallback=fallback,
        images=choice.images,
        reference_plans=references,
        knowledge_card=_card_text(choice, template),
    )
    existed = session_dir.exists()
    policy = recording_policy(settings, session_dir)
    try:
        policy.prepare()
    except BaseException:  # a session that cannot start leaves nothing behind
        if not existed:
            shutil.rmtree(session_dir, ignore_errors=True)
        raise
    return policy
