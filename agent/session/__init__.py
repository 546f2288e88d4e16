"""One planning session: the loop and what it needs (plan step, stopping, state, negotiation,
memory, guardrails, approval, journal and records, resume and replay, identity).

Import from the submodules (``agent.session.loop``, ``agent.session.journal``, ...); this
package module stays empty so that importing one record type never pulls in the loop.
"""
