"""engine.args against one release's option table, read the way vLLM's parser reads a command line.

Finds what would crash the pod at start (an option the release does not have, an ambiguous
prefix, a stray value) and what would contradict a spec field (any spelling or prefix of an
owned option), before anything is rolled out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from modelfleet.engines.base import EngineSpecError
from modelfleet.engines.vllm.owned import OWNED_DESTS
from modelfleet.engines.vllm.table import FlagTable, Option

_NUMBER = re.compile(r"^-\d+(\.\d+)?([eE][-+]?\d+)?$")  # argparse reads these as values, not options


def _is_option(token: str) -> bool:
    return token.startswith("-") and token != "-" and not _NUMBER.match(token)


def _values_after(option: Option, token: str) -> tuple[int, int]:
    """(least, most) value tokens that follow an option token (none when given as --flag=value)."""
    if not option.takes_value or "=" in token:
        return 0, 0
    if option.nargs in (None, "1"):
        return 1, 1
    if option.nargs == "?":
        return 0, 1
    if option.nargs in ("*", "+"):
        return (1 if option.nargs == "+" else 0), 1_000_000
    count = int(option.nargs) if option.nargs.isdigit() else 1
    return count, count


def arg_problems(table: FlagTable, args: Sequence[str]) -> list[EngineSpecError]:
    """Every engine.args entry this release would refuse or that a spec field owns."""
    problems: list[EngineSpecError] = []
    i = 0
    while i < len(args):
        token, field = args[i], f"engine.args[{i}]"
        i += 1
        if not _is_option(token):
            detail = "not an option: a value must follow its flag (or use --flag=value)"
            problems.append(EngineSpecError(field, token, table.version, detail))
            continue
        found = table.candidates(token)
        if len(found) != 1:
            if found:
                names = ", ".join(sorted(o.option_strings[0] for o in found)[:6])
                detail = f"ambiguous: vLLM reads it as a prefix of several options ({names}); write it in full"
            else:
                detail = "this release has no such option (see `vllm serve --help=all` for this version)"
            problems.append(EngineSpecError(field, token, table.version, detail))
            while i < len(args) and not _is_option(args[i]):  # its values: one problem is enough
                i += 1
            continue
        option = found[0]
        if option.dest in OWNED_DESTS:
            owner = OWNED_DESTS[option.dest]
            owner = owner if " " in owner else f"spec.{owner}"
            detail = f"selects {option.option_strings[0]}, which modelfleet sets from {owner}; set that instead"
            problems.append(EngineSpecError(field, token, table.version, detail))
        least, most = _values_after(option, token)
        taken = 0
        while taken < most and i < len(args) and not _is_option(args[i]):
            i, taken = i + 1, taken + 1
        if taken < least:
            detail = f"{option.option_strings[0]} needs a value (write {option.option_strings[0]}=VALUE)"
            problems.append(EngineSpecError(field, token, table.version, detail))
    return problems
