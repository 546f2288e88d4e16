"""Knowledge cards (what successful plans of a site had in common) and the policies that use
them: ``--policy knowledge`` (:class:`KnowledgePolicy`, the rule policy started from and bounded
by a card) and the card text of ``--policy llm --knowledge`` (:func:`card_text`)."""

from agent.policies.knowledge.ablations import shuffled_card
from agent.policies.knowledge.card import (
    CARD_SCHEMA_VERSION,
    KnowledgeCard,
    KnowledgeCardError,
    check_card,
    installed_card_path,
    load_installed_card,
    read_card,
    write_card,
)
from agent.policies.knowledge.policy import KnowledgePolicy, KnowledgeSettings
from agent.policies.knowledge.text import card_text

__all__ = [
    "CARD_SCHEMA_VERSION",
    "KnowledgeCard",
    "KnowledgeCardError",
    "KnowledgePolicy",
    "KnowledgeSettings",
    "card_text",
    "check_card",
    "installed_card_path",
    "load_installed_card",
    "read_card",
    "shuffled_card",
    "write_card",
]
