"""The LLM planner: ``Policy.propose`` over a model that answers with one tool call.

One iteration: assemble the prompt from the :class:`PolicyContext` (canonical template
ids only, identifiers redacted, outside text quoted as data), ask the model for
:class:`PlanEdits`, repair a format error by sending the exact error back (at most
``max_repairs`` times per answer), optionally run look-ahead trials the model asks for
(``simulate_only``), and return the complete objective list. Guardrail rejections and the
clinician's feedback continue the same conversation (thinking blocks sent back unchanged).

What ends a session cleanly (the best plan kept): the model is done, its edits change
nothing (no progress), its output cannot be repaired (unless a fallback policy is
configured), the budget is spent. What stops it with the original objectives restored:
an unreachable server, a timeout, a refused request (:class:`LlmError`, a
:class:`PolicyError`); the calls made so far are attached as ``exc.model_calls``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from agent.policies.base import Policy, PolicyContext
from agent.policies.llm.budget import Accounting
from agent.policies.llm.conversation import Conversation
from agent.policies.llm.edits import TOOL_DESCRIPTION, TOOL_NAME, EditError, PlanEdits, apply_edits
from agent.policies.llm.errors import LlmBudgetExceeded, LlmConfigError, LlmError, PromptTooLarge
from agent.policies.llm.parse import FormatProblem, ReadReply, read_reply
from agent.policies.llm.prompt import PromptOptions, assemble_prompt
from agent.policies.llm.providers.base import LlmProvider
from agent.policies.llm.reporting import (
    CRITIQUE_TOOL,
    CallTally,
    Critique,
    describe_trial,
    reask_text,
    redact_request,
)
from agent.policies.llm.sanitize import Redactor
from agent.policies.llm.settings import LlmSettings
from agent.policies.llm.wire import ImagePart, LlmReply, ToolCall, ToolSpec
from agent.session.model_calls import FormatErrorKind, ModelCallStats
from agent.session.records import Proposal
from esapi_bridge.dto import Objective


class ExchangeLog(Protocol):
    """What the recording (or replay) transport offers: the exchanges since the last take."""

    def take(self) -> list[str]:
        """Hashes of the exchanges recorded since the last call."""
        ...


ProviderFactory = Callable[[], LlmProvider]


class LlmPolicy:
    """The ``llm`` policy.

    Parameters
    ----------
    settings
        Provider, repairs, fallback, two-role mode, budget (recorded in the journal).
    provider_factory
        Builds the provider on first use (the CLI passes one that injects the recording or
        replay HTTP client); default: :func:`agent.policies.llm.providers.factory.make_provider`.
    exchanges
        The transport's log of recorded exchanges, attached to each proposal.
    fallback
        The policy that proposes when the model's output cannot be repaired.
    """

    name = "llm"

    def __init__(
        self,
        settings: LlmSettings | None = None,
        *,
        provider_factory: ProviderFactory | None = None,
        exchanges: ExchangeLog | None = None,
        fallback: Policy | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings = settings or LlmSettings()
        self._factory = provider_factory
        self._env = env
        self._provider: LlmProvider | None = None
        self._exchanges = exchanges
        self._fallback = fallback
        self._clock = clock
        self.tally = CallTally(self.settings)
        self._pending: tuple[int, Conversation, ToolCall] | None = None

    # ------------------------------------------------------------------ setup
    def prepare(self) -> LlmProvider:
        """Build (and let it probe) the provider: a missing key, a cloud URL that is not
        allowed or an unreachable server fails here, before anything touches the plan."""
        if self._provider is None:
            if self._factory is not None:
                self._provider = self._factory()
            else:
                from agent.policies.llm.providers.factory import make_provider

                self._provider = make_provider(self.settings.provider, env=self._env)
            probe = getattr(self._provider, "probe", None)
            if callable(probe):  # the server and the model answer, or a clear error now
                probe()
            description = self._provider.description
            if self.settings.images and not description.capabilities.supports_images:
                raise LlmConfigError(
                    f"dose-plane images were asked for, but {description.provider} "
                    f"({description.model}) is not known to take images here: plan without "
                    "--images, or use a multimodal model"
                )
            self.tally.model = self._provider.description.model
        return self._provider

    def restore_usage(self, stats: Sequence[ModelCallStats | None]) -> None:
        """Count the calls a resumed session already made against its budget."""
        self.tally.accounting = Accounting.from_calls(
            stats, self.settings.budget, model=self.tally.model
        )
        for s in stats:
            if s is not None:
                self.tally.reconcile(s.input_tokens, s.estimated_input_tokens)

    def close(self) -> None:
        """Release the provider's HTTP client."""
        if self._provider is not None:
            self._provider.close()

    # ------------------------------------------------------------------ propose
    def propose(self, context: PolicyContext) -> Proposal:
        """The next objectives from the model (see the module docstring for how it ends)."""
        self.tally.begin_proposal()
        try:
            return self._propose(context)
        except LlmBudgetExceeded as exc:
            return self._stop(context, f"the LLM budget is spent: {exc}")
        except LlmError as exc:
            exc.model_calls = self.tally.proposal_stats()  # type: ignore[attr-defined]
            raise

    def _propose(self, context: PolicyContext) -> Proposal:
        redactor = Redactor(context.identifiers)
        conversation, critique = self._conversation(context, redactor)
        answer = self._answer(conversation, context, redactor, PlanEdits, self._plan_tool())
        if answer is None:
            return self._unrepaired(context)
        edits, call = answer.edits, answer.call
        trials_left = context.trials_left
        while edits.simulate_only and not edits.done and context.trial is not None and trials_left:
            outcome = context.trial(self._objectives(edits, context))
            trials_left -= 1
            self.tally.trial()
            report = describe_trial(outcome, trials_left, context, redactor)
            conversation.answer(call, report, is_error=False)
            answer = self._answer(conversation, context, redactor, PlanEdits, self._plan_tool())
            if answer is None:
                return self._unrepaired(context)
            edits, call = answer.edits, answer.call
        self._pending = (context.iteration, conversation, call)
        text = " ".join(t for t in (edits.assessment, edits.rationale) if t).strip()
        if critique:
            self.tally.critique(critique)
        if edits.done:
            return self._stop(context, text or "the model accepts the plan")
        objectives = self._objectives(edits, context)
        if objectives == list(context.objectives):
            return self._stop(
                context, "no progress: the model's edits leave every objective as it is"
            )
        return Proposal(
            objectives=objectives,
            rationale=text,
            policy=self.name,
            model_calls=self.tally.proposal_stats(),
        )

    # ------------------------------------------------------------------ conversation
    def _plan_tool(self) -> ToolSpec:
        return ToolSpec(
            name=TOOL_NAME, description=TOOL_DESCRIPTION, input_schema=PlanEdits.model_json_schema()
        )

    def _options(self, context: PolicyContext, critique: str | None, images: bool) -> PromptOptions:
        return PromptOptions(
            memory_iterations=self.settings.memory_iterations,
            role="planner-with-critique" if critique else "planner",
            critique=critique,
            trials_left=context.trials_left,
            images=images,
            reference_plans=self.settings.reference_plans,
            knowledge_card=self.settings.knowledge_card,
        )

    def _images(self, context: PolicyContext, redactor: Redactor) -> list[ImagePart]:
        """The dose-plane image of the current plan, when asked for and the TPS has planes."""
        if not self.settings.images:
            return []
        from agent.policies.llm.images import dose_plane_images  # matplotlib: on demand

        return dose_plane_images(context.dose_planes(), context, redactor)

    def _conversation(
        self, context: PolicyContext, redactor: Redactor
    ) -> tuple[Conversation, str | None]:
        """The conversation for this attempt: a new one at an iteration's first attempt, the
        same one (answering the last tool call) on a guardrail re-ask or clinician feedback."""
        pending = self._pending
        if context.attempt > 0 and pending is not None and pending[0] == context.iteration:
            _, conversation, call = pending
            conversation.answer(call, reask_text(context, redactor), is_error=True)
            return conversation, None
        images = self._images(context, redactor)  # before any trial changes the dose
        critique = self._critique(context, redactor, images) if self.settings.two_role else None
        options = self._options(context, critique, bool(images))
        prompt = assemble_prompt(context, options, redactor)
        conversation = Conversation(
            prompt.system,
            prompt.user_text,
            self._plan_tool(),
            self.settings.provider.max_output_tokens,
            images=images,
        )
        return conversation, critique

    def _critique(
        self, context: PolicyContext, redactor: Redactor, images: list[ImagePart]
    ) -> str | None:
        """Two-role mode: the evaluator's critique of the current plan (``None`` if unusable)."""
        options = PromptOptions(
            memory_iterations=self.settings.memory_iterations,
            role="evaluator",
            images=bool(images),
            reference_plans=self.settings.reference_plans,
            knowledge_card=self.settings.knowledge_card,
        )
        prompt = assemble_prompt(context, options, redactor)
        tool = ToolSpec(
            name=CRITIQUE_TOOL,
            description="Write a critique of the current plan for the planner.",
            input_schema=Critique.model_json_schema(),
        )
        conversation = Conversation(
            prompt.system,
            prompt.user_text,
            tool,
            self.settings.provider.max_output_tokens,
            images=images,
        )
        answer = self._answer(conversation, context, redactor, Critique, tool)
        return None if answer is None else answer.edits.critique

    def _answer(
        self,
        conversation: Conversation,
        context: PolicyContext,
        redactor: Redactor,
        model: type[Any],
        tool: ToolSpec,
    ) -> ReadReply[Any] | None:
        """One usable answer, repairing format errors; ``None`` when the repairs run out."""
        errors: list[FormatErrorKind] = []
        for repair in range(self.settings.max_repairs + 1):
            reply = self._call(conversation, context.identifiers)
            conversation.add_reply(reply)
            result = read_reply(reply, tool.name, model)
            if isinstance(result, ReadReply) and isinstance(result.edits, PlanEdits):
                try:
                    self._objectives(result.edits, context)
                except EditError as exc:
                    result = FormatProblem(FormatErrorKind.UNKNOWN_REFERENCE, str(exc), result.call)
            if isinstance(result, ReadReply):
                self.tally.answered(errors)
                return result
            errors.append(result.kind)
            if repair == self.settings.max_repairs:
                self.tally.unrepaired(errors)
                return None
            conversation.answer(result.call, result.message, is_error=True)
        return None  # pragma: no cover - the loop returns

    def _call(self, conversation: Conversation, identifiers: frozenset[str]) -> LlmReply:
        provider = self.prepare()
        # the last pass: known identifiers only (digit runs in images or hashes are data)
        request = redact_request(
            conversation.request(), Redactor(identifiers, scrub_patterns=False)
        )
        estimate = provider.estimate_input_tokens(request)
        checked = self.tally.reconciled(estimate)  # scaled by the usage servers returned
        limit = (
            provider.description.capabilities.context_tokens
            or self.settings.provider.context_tokens
        )
        if limit is not None and checked + request.max_output_tokens > limit:
            raise PromptTooLarge(
                f"the prompt needs about {checked} input tokens plus {request.max_output_tokens} "
                f"output tokens, more than the model's context of {limit}; the prompt is never "
                "truncated: show fewer past iterations, reference plans or images, or use a model "
                "with a larger context"
            )
        self.tally.check_budget(checked)
        t0 = self._clock()
        try:
            reply = provider.complete(request)
        finally:
            hashes = self._exchanges.take() if self._exchanges is not None else []
            self.tally.exchanges(hashes)
        self.tally.called(reply, estimate, self._clock() - t0)
        return reply

    # ------------------------------------------------------------------ endings
    def _objectives(self, edits: PlanEdits, context: PolicyContext) -> list[Objective]:
        """The complete objective list after ``edits``; additions' template ids -> plan ids."""
        objectives = apply_edits(context.objectives, edits)
        added = len(objectives) - len(edits.additions)
        out: list[Objective] = list(objectives[:added])
        for objective in objectives[added:]:
            plan_id = context.structure_map.get(getattr(objective, "structure_id", ""))
            out.append(
                objective
                if plan_id is None
                else objective.model_copy(update={"structure_id": plan_id})
            )
        return out

    def _stop(self, context: PolicyContext, why: str) -> Proposal:
        self._pending = None
        return Proposal(
            objectives=list(context.objectives),
            rationale=why,
            done=True,
            policy=self.name,
            model_calls=self.tally.proposal_stats(),
        )

    def _unrepaired(self, context: PolicyContext) -> Proposal:
        self._pending = None
        why = (
            f"the model's answer could not be used after {self.settings.max_repairs} repairs "
            f"({self.tally.last_errors_text()})"
        )
        if self._fallback is None:
            return self._stop(context, why)
        proposal = self._fallback.propose(context)
        stats = self.tally.proposal_stats().model_copy(update={"fallback": True})
        return proposal.model_copy(
            update={
                "policy": f"{self.name}+{self._fallback.name}",
                "rationale": f"{why}; the {self._fallback.name} policy proposed: {proposal.rationale}",
                "model_calls": stats,
            }
        )
