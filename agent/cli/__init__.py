"""The ``rtplan`` command line: the composition root that chooses a backend.

This is the only part of :mod:`agent` that may import :mod:`mock_tps` (or, later, pythonnet).
"""

from agent.cli.main import app

__all__ = ["app"]
