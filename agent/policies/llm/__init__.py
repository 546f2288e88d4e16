"""The LLM planner (policy ``llm``)."""
