"""What every command checks before it works: its options and its outputs.

Every entry point first checks its command line's keys
(:func:`climb_bayes.overrides.check_command_line`). Its main function then checks its options
with :func:`number` (and :func:`positive`, :func:`optional_positive`), :func:`count`,
:func:`numbers`, :func:`names`, :func:`choice`, :func:`flag` and :func:`required` (a structured
config's keys with :func:`schema_keys`), and its outputs with :func:`output_file` and
:func:`output_directory`, before it reads or writes anything. Every failed check is an
:class:`~climb_bayes.errors.InputError` that names the key, the value and the fix.
"""

import dataclasses
import math
from collections.abc import Iterable
from numbers import Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from climb_bayes.errors import InputError, listing, plain

#: The configuration directory of every entry point (``conf/`` beside the packages).
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


# --------------------------------------------------------------------------------------------
# Option values
# --------------------------------------------------------------------------------------------

def _interval(above: float | None, at_least: float | None, below: float | None,
              at_most: float | None) -> str:
    """``a finite number > 0``, ``a number in (0, 1]`` and so on."""
    low = (f"({above:g}" if above is not None else
           f"[{at_least:g}" if at_least is not None else None)
    high = (f"{below:g})" if below is not None else
            f"{at_most:g}]" if at_most is not None else None)
    if low is not None and high is not None:
        return f"a number in {low}, {high}"
    if low is not None:
        return f"a finite number {'>' if above is not None else '>='} {low[1:]}"
    if high is not None:
        return f"a finite number {'<' if below is not None else '<='} {high[:-1]}"
    return "a finite number"


def number(value: Any, key: str, what: str, example: str, *, above: float | None = None,
           at_least: float | None = None, below: float | None = None,
           at_most: float | None = None) -> float:
    """``value`` as a float, finite and within the given bounds; otherwise an InputError
    ``key=value: the <what> must be <requirement>; give e.g. <example>.``"""
    try:
        result = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        result = math.nan
    inside = (math.isfinite(result)
              and (above is None or result > above) and (at_least is None or result >= at_least)
              and (below is None or result < below) and (at_most is None or result <= at_most))
    if not inside:
        raise InputError(f"{key}={plain(value)}: the {what} must be "
                         f"{_interval(above, at_least, below, at_most)}; give e.g. {example}.")
    return result


def positive(value: Any, key: str, what: str, example: str) -> float:
    """``value`` as a finite float > 0 (:func:`number`)."""
    return number(value, key, what, example, above=0.0)


def optional_positive(value: Any, key: str, what: str, example: str) -> float | None:
    """None (the option is not set), or ``value`` as a finite float > 0 (:func:`number`)."""
    return None if value is None else positive(value, key, what, example)


#: What every budget option is, in the one message they share (:func:`budget`).
BUDGET = "budget in training tokens (the total tokens of one run)"


def budget(value: Any, key: str = "tokens", example: str = "tokens=2e9") -> float:
    """A budget in training tokens, ``D``: a finite float > 0. The one check of every budget
    a command reads (``target_tokens``, ``tokens``, a mix file's budget, a trainer's run)."""
    return positive(value, key, BUDGET, example)


def count(value: Any, key: str, what: str, example: str, minimum: int = 1) -> int:
    """``value`` as a whole number >= ``minimum``; otherwise an InputError like :func:`number`'s."""
    whole = (not isinstance(value, bool) and isinstance(value, Real)
             and math.isfinite(value) and value == int(value) and value >= minimum)
    if not whole:
        raise InputError(f"{key}={plain(value)}: the {what} must be a whole number >= {minimum}; "
                         f"give e.g. {example}.")
    return int(value)


def _items(value: Any, key: str, what: str, example: str, minimum: int) -> list[Any]:
    """``value`` as a Python list of at least ``minimum`` items; an InputError for a scalar or
    a shorter list."""
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, list | tuple):
        raise InputError(f"{key}={plain(value)}: must be a list, one {what} per entry, in "
                         f"brackets even for one entry; give e.g. {example}.")
    if len(value) < minimum:
        raise InputError(f"{key}={plain(value)}: give at least {minimum} "
                         f"{what}{'s' if minimum > 1 else ''}, e.g. {example}.")
    return list(value)


def numbers(value: Any, key: str, what: str, example: str, **bounds: float) -> list[float]:
    """``value`` as a non-empty list of floats, each checked by :func:`number` with ``bounds``
    and named ``key[i]`` in a message."""
    return [number(item, f"{key}[{i}]", what, example, **bounds)
            for i, item in enumerate(_items(value, key, what, example, minimum=1))]


def names(value: Any, key: str, what: str, example: str, minimum: int = 1) -> list[str]:
    """``value`` as a list of at least ``minimum`` names, none repeated."""
    items = [str(item) for item in _items(value, key, what, example, minimum)]
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise InputError(f"{key}={plain(items)}: repeats {listing(repeated)}; give each {what} "
                         f"once, e.g. {example}.")
    return items


def choice(value: Any, key: str, options: Iterable[str]) -> str:
    """``value``, one of ``options``; otherwise an InputError listing them."""
    options = list(options)
    if value not in options:
        raise InputError(f"{key}={plain(value)}: choose one of {', '.join(options)}, e.g. "
                         f"{key}={options[0]}.")
    return str(value)


def flag(value: Any, key: str) -> bool:
    """``value``, true or false; otherwise an InputError."""
    if not isinstance(value, bool):
        raise InputError(f"{key}={plain(value)}: must be true or false, e.g. {key}=true.")
    return value


def schema_keys(cfg: DictConfig) -> None:
    """An InputError naming every key of ``cfg`` that its structured config (a dataclass
    registered by :mod:`climb_bayes.config_store`, nested ones too) lacks: one added with
    ``+key=value``, which Hydra lets into a structured config."""
    def added(node: DictConfig, prefix: str) -> list[str]:
        schema = OmegaConf.get_type(node)
        known = ({f.name for f in dataclasses.fields(schema)}
                 if dataclasses.is_dataclass(schema) else None)
        found = []
        for key in node:
            if known is not None and key not in known:
                found.append(f"{prefix}{key}")
            elif not OmegaConf.is_missing(node, key) and isinstance(node[key], DictConfig):
                found += added(node[key], f"{prefix}{key}.")
        return found

    unknown = added(cfg, "")
    if unknown:
        raise InputError(f"there is no key {listing(unknown)} in this command's configuration "
                         f"(added with +key=value, nothing would read it); remove it. "
                         f"`--cfg job` prints every key.")


def required(cfg: DictConfig, key: str, what: str, example: str) -> Any:
    """The value of ``cfg[key]``; an InputError when it is unset (``???`` or null)."""
    if OmegaConf.is_missing(cfg, key) or cfg[key] is None:
        raise InputError(f"{key} is not set: give the {what}, e.g. {example}.")
    return cfg[key]


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

def _blocking_file(path: Path) -> Path | None:
    """The first of ``path``'s parents that exists and is not a directory, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def _output(value: Any, key: str, example: str) -> Path:
    """The output path; an InputError when it is unset or lies below a file."""
    if value is None or not str(value).strip():
        raise InputError(f"{key} is not set: give where to write, e.g. {key}={example}.")
    path = Path(str(value))
    blocking = _blocking_file(path)
    if blocking is not None:
        raise InputError(f"{key}={path}: {blocking} is a file, not a directory, so nothing can "
                         f"be written below it; give another path, e.g. {key}={example}.")
    return path


def output_file(value: Any, key: str, example: str) -> Path:
    """A file the command will write (``example``: a file name for the message); an
    InputError naming the fix when it is an existing directory."""
    path = _output(value, key, example)
    if path.is_dir():
        raise InputError(f"{key}={path}: {path} is a directory, but the command writes one "
                         f"file there; give a file path, e.g. {key}={path / example}.")
    return path


def output_directory(value: Any, key: str, example: str, writes: str) -> Path:
    """A directory the command will write ``writes`` into; an InputError naming the fix when
    it is an existing file."""
    path = _output(value, key, example)
    if path.exists() and not path.is_dir():
        raise InputError(f"{key}={path}: {path} is a file, but the command writes a directory "
                         f"({writes}) there; give a directory, e.g. {key}={example}.")
    return path
