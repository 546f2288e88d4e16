"""One iteration's conversation with the model: system prompt, turns, the tool.

Assistant turns keep the provider-native content of each reply (thinking blocks
included) and are sent back unchanged when the exchange continues (a repair, a guardrail
re-ask, a look-ahead result); answers to a tool call go back as its tool result.
"""

from __future__ import annotations

from agent.policies.llm.wire import (
    ImagePart,
    LlmReply,
    LlmRequest,
    SystemPart,
    ToolCall,
    ToolResult,
    ToolSpec,
    Turn,
)


class Conversation:
    """The turns of one iteration's exchange with the model."""

    def __init__(
        self,
        system: list[SystemPart],
        user_text: str,
        tool: ToolSpec,
        max_output_tokens: int,
        images: list[ImagePart] | None = None,
    ) -> None:
        self.system = list(system)
        self.tool = tool
        self.max_output_tokens = max_output_tokens
        self.turns: list[Turn] = [Turn(role="user", text=user_text, images=images or [])]

    def request(self) -> LlmRequest:
        """The request for the next call (the last turn is always the user's)."""
        return LlmRequest(
            system=self.system,
            turns=list(self.turns),
            tool=self.tool,
            max_output_tokens=self.max_output_tokens,
        )

    def add_reply(self, reply: LlmReply) -> None:
        """Append the model's reply as it must be sent back."""
        self.turns.append(
            Turn(role="assistant", text=reply.text, provider_turn=reply.provider_turn)
        )

    def answer(self, call: ToolCall | None, text: str, *, is_error: bool) -> None:
        """Answer the last reply: as the tool result of ``call``, or as plain user text."""
        if call is None:
            self.turns.append(Turn(role="user", text=text))
        else:
            result = ToolResult(call_id=call.call_id, content=text, is_error=is_error)
            self.turns.append(Turn(role="user", tool_result=result))

    @property
    def awaiting_answer(self) -> bool:
        """Whether the last turn is the model's (a new user turn must follow)."""
        return self.turns[-1].role == "assistant"
