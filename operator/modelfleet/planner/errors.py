"""Errors raised by the planner."""

from __future__ import annotations


class PlanInputError(ValueError):
    """The planner's input is unusable: bad numbers, an unknown quantization, an unreadable config.

    The message is one line a person can act on; the CLI prints it and exits 2, the
    operator turns it into a condition and an Event.
    """
