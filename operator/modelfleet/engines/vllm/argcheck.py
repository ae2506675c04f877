"""engine.args against one release's flag table, read the way vLLM's own parser reads them.

vLLM's FlexibleArgumentParser turns `_` into `-` inside a long option, splits `--flag=value`,
rewrites dotted options (`--compilation-config.level 3`) into JSON, and argparse accepts any
unambiguous prefix of a long option (`--tensor-par 4`). So only exact spellings of options the
release defines pass here; anything else — an owned option under any spelling, a prefix, an
unknown option, a stray value — is refused, naming `spec.engine.args[i]`, the option and the
field to use instead. Values are walked as argparse consumes them (nargs), so a value that
looks like an option is caught too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# argparse treats these as values, not options, when no option looks like a negative number.
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")

# Destinations refused in engine.args beyond the ones spec fields own (owned.OWNED_DESTS): each
# could undo a field or a protection without naming an owned option.
GUARDED_DESTS: dict[str, str] = {
    "config": "the spec fields (a config file could set any option, owned ones included)",
    "hf_token": "model.tokenSecretRef (a token in args is visible in the pod spec)",
    "download_dir": "the cache volume modelfleet mounts (downloads elsewhere escape its size limit)",
    "uds": "the fixed port 8000 (probes, the Service and scrapes need it)",
    "allowed_local_media_path": "nothing: API clients could read files of the pod (mounted credentials)",
}


class Option(Protocol):
    """What the check needs of one option of the release's table (table.Option)."""

    @property
    def option_strings(self) -> tuple[str, ...]: ...
    @property
    def dest(self) -> str: ...
    @property
    def takes_value(self) -> bool: ...
    @property
    def nargs(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def choices(self) -> tuple[str, ...] | None: ...


class Table(Protocol):
    """What the check needs of a release's flag table (table.FlagTable)."""

    @property
    def version(self) -> str: ...
    @property
    def by_option(self) -> Mapping[str, Option]: ...


@dataclass(frozen=True)
class ArgProblem:
    """One refused item of engine.args."""

    index: int
    flag: str
    detail: str

    @property
    def field(self) -> str:
        """The field path, e.g. engine.args[3]."""
        return f"engine.args[{self.index}]"

    def __str__(self) -> str:
        return f"spec.{self.field}: {self.flag}: {self.detail}"


def normalize(token: str) -> str:
    """The option part of a token as vLLM reads it: value cut at `=`, `_` -> `-` in a long option."""
    flag = token.split("=", 1)[0]
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token)


def _value_counts(option: Option) -> tuple[int, int | None]:
    """(fewest, most) values an option consumes after it; most None = unbounded."""
    nargs = option.nargs
    if not option.takes_value or nargs == "0":
        return 0, 0
    if nargs is None:
        return 1, 1
    if nargs == "?":
        return 0, 1
    if nargs == "*":
        return 0, None
    if nargs == "+":
        return 1, None
    return int(nargs), int(nargs)


def _unknown(flag: str, table: Table, owned: Mapping[str, str]) -> str:
    """Why an option that is not an exact spelling is refused (prefix of an owned one, prefix, unknown)."""
    if flag.startswith("--"):
        matches = sorted({o for o in table.by_option if o.startswith(flag)})
        owned_matches = [o for o in matches if table.by_option[o].dest in owned]
        if owned_matches:
            target = owned_matches[0]
            return (
                f"abbreviates {target}, which modelfleet sets from spec.{owned[table.by_option[target].dest]}; "
                "set that field instead"
            )
        if matches:
            return f"is an abbreviation (of {', '.join(matches[:3])}); write the option in full"
    elif flag[:2] in table.by_option:
        short = table.by_option[flag[:2]]
        if short.dest in owned:
            return f"is {flag[:2]} with a glued value; modelfleet sets it from spec.{owned[short.dest]}"
        return f"a value glued to {flag[:2]}; write the option and its value as separate items"
    return f"is not an option of vLLM {table.version} (`vllm serve --help`)"


def _value_problem(option: Option, value: str) -> str | None:
    """Why vLLM's parser would refuse a value of this option (by its type and choices), or None."""
    if option.choices and value not in option.choices:
        return f"takes one of {', '.join(option.choices[:12])}"
    converters = {"int": int, "float": float}
    convert = converters.get(option.type or "")
    if convert is not None:
        try:
            convert(value)
        except ValueError:
            return f"takes a number ({option.type})"
    return None


@dataclass
class _Pending:
    """An option still consuming the values after it."""

    index: int
    flag: str
    option: Option | None  # None: unknown (its values are skipped, not checked)
    need: int
    room: int | None  # None: unbounded

    def takes(self, token: str) -> bool:
        return not _is_option(token) and (self.room is None or self.room > 0)

    def consume(self) -> None:
        self.need = max(0, self.need - 1)
        self.room = None if self.room is None else self.room - 1


def check(args: Sequence[str], table: Table, owned: Mapping[str, str]) -> list[ArgProblem]:
    """Every refused item of engine.args; `owned` maps argparse destinations to the field that owns them.

    Messages never repeat a value (it may be a secret someone pasted): only option names.
    """
    problems: list[ArgProblem] = []
    pending: _Pending | None = None
    for i, token in enumerate(args):
        if pending is not None and pending.takes(token):
            pending.consume()
            why = _value_problem(pending.option, token) if pending.option is not None else None
            if why:
                problems.append(ArgProblem(pending.index, pending.flag, f"{why}; the value at engine.args[{i}] is not"))
            continue
        if pending is not None and pending.need > 0:
            follower = normalize(token) if _is_option(token) else "another option"
            problems.append(ArgProblem(pending.index, pending.flag, f"expects a value, but {follower} follows"))
        pending = None
        if token == "--":
            problems.append(ArgProblem(i, token, "ends option parsing; not allowed"))
        elif not _is_option(token):
            problems.append(ArgProblem(i, "(a value)", "is a value without an option before it"))
        else:
            problem, pending = _check_option(i, token, table, owned)
            if problem is not None:
                problems.append(problem)
    if pending is not None and pending.need > 0:
        problems.append(ArgProblem(pending.index, pending.flag, "expects a value at the end of engine.args"))
    return problems


def _check_option(
    i: int, token: str, table: Table, owned: Mapping[str, str]
) -> tuple[ArgProblem | None, _Pending | None]:
    """One option token: its problem, if any, and the values it goes on to consume."""
    flag = normalize(token)
    option = table.by_option.get(flag)
    if option is None:
        # Whatever follows up to the next option belongs to it: one problem, not one per value.
        problem = ArgProblem(i, flag, _unknown(flag, table, {**GUARDED_DESTS, **owned}))
        return problem, _Pending(i, flag, None, 0, None)
    low, high = _value_counts(option)
    glued = "=" in token
    if option.dest in owned or option.dest in GUARDED_DESTS:
        if option.dest in owned:
            detail = f"is set by modelfleet from spec.{owned[option.dest]}; set that field instead"
        else:
            detail = f"is not allowed; use {GUARDED_DESTS[option.dest]}"
        return ArgProblem(i, flag, detail), None if glued or high == 0 else _Pending(i, flag, None, 0, high)
    if glued:
        if high == 0:
            return ArgProblem(i, flag, "is a switch and takes no value"), None
        why = _value_problem(option, token.split("=", 1)[1])
        return (ArgProblem(i, flag, why) if why else None), None
    return None, None if high == 0 else _Pending(i, flag, option, low, high)
