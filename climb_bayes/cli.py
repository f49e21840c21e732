"""What every command checks before it works: its command line, its options and its outputs.

Every entry point (``python -m climb_bayes.<command>``, ``python -m trainers.corpus``,
``python -m trainers.sweep``, ``python train.py``) calls :func:`check_command_line` in its
``__main__`` block before Hydra starts: an override ``key=value`` of a key that its composed
configuration does not have exits with status 2, naming the key and the closest valid keys
(Hydra's own message would advise ``+key=value``, which adds a key nothing reads). The main
functions then check their options with :func:`number` (and :func:`positive`,
:func:`optional_positive`), :func:`count`, :func:`numbers`, :func:`names`, :func:`choice`,
:func:`flag` and :func:`required` (a structured config's keys with :func:`schema_keys`), and
their outputs with :func:`output_file` and :func:`output_directory`, before they read or write
anything. Every failed check is an
:class:`~climb_bayes.errors.InputError` that names the key, the value and the fix.
"""

import dataclasses
import difflib
import itertools
import math
import sys
from collections.abc import Iterable, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from climb_bayes.errors import InputError, exits_on_input_error, listing, plain

#: The configuration directory of every entry point (``conf/`` beside the packages).
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
#: Valid keys offered for an unknown one.
SUGGESTIONS = 3


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


# --------------------------------------------------------------------------------------------
# Override keys
# --------------------------------------------------------------------------------------------

def _keys(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every dotted key path of a config container (``a``, ``a.b``, list items ``a.0``)."""
    found = {}
    entries = (node.items() if isinstance(node, dict) else
               enumerate(node) if isinstance(node, list) else ())
    for name, value in entries:
        path = f"{prefix}{name}"
        found[path] = value
        found.update(_keys(value, f"{path}."))
    return found


def _is_value_override(override: Override) -> bool:
    """A plain ``key=value``: not ``+key``, ``++key``, ``~key``, ``group@package`` or Hydra's."""
    return (override.type == OverrideType.CHANGE and override.package is None
            and not override.is_hydra_override())


def _variants(overrides: Sequence[Override]) -> list[list[str]]:
    """The override lists to compose: one per combination of the values of any sweep."""
    choices = []
    for override in overrides:
        if not override.is_sweep_override():
            choices.append([override.input_line])
        elif override.is_discrete_sweep() and override.value_type != ValueType.GLOB_CHOICE_SWEEP:
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            raise HydraException(f"{override.input_line}: left to Hydra")
    return [list(combination) for combination in itertools.product(*choices)]


def _composed(config_name: str, overrides: Sequence[Override]
              ) -> tuple[list[dict[str, Any]], set[str]]:
    """The configs composed with every config-group selection and ``+``/``~``/Hydra override
    among ``overrides`` (each sweep combination), as key dicts, and the config groups."""
    loader = GlobalHydra.instance().config_loader()
    groups = set(loader.list_groups(""))
    for _ in range(3):  # a selection may bring groups of its own
        selections = [o for o in overrides if not _is_value_override(o) or o.key_or_group in groups]
        configs = [compose(config_name, variant, return_hydra_config=True)
                   for variant in _variants(selections)]
        found = groups.union(*(config.hydra.runtime.choices.keys() for config in configs))
        if found == groups:
            break
        groups = found
    containers = [OmegaConf.to_container(config, resolve=False) for config in configs]
    return [_keys({k: v for k, v in c.items() if k != "hydra"}) for c in containers], groups


def _closest(key: str, candidates: Sequence[str]) -> list[str]:
    """The valid keys closest to ``key`` (difflib's ratio, at least 0.6 and within 0.1 of the
    best), after any key ending in the same name elsewhere (``chains`` -> ``sampler.chains``)."""
    last = key.rsplit(".", 1)[-1]
    same_name = [c for c in candidates if c.rsplit(".", 1)[-1] == last]
    scores = {c: difflib.SequenceMatcher(None, key, c).ratio() for c in candidates}
    best = max(scores.values(), default=0.0)
    close = sorted((c for c, s in scores.items() if s >= max(0.6, best - 0.1)),
                   key=lambda c: -scores[c])
    return list(dict.fromkeys(same_name + close))[:SUGGESTIONS]


def _unknown_key(override: Override, keys: dict[str, Any], config_name: str) -> str:
    """The message for an override whose key the composed configuration lacks."""
    key = override.key_or_group
    parts = key.split(".")
    parent = ".".join(parts[:-1])
    if parent in keys and keys[parent] is None:  # weights.en=1 where weights: null
        return (f"{override.input_line}: {parent} is null, so it has no key '{parts[-1]}'; set "
                f"the whole mapping, e.g. {parent}={{{parts[-1]}: "
                f"{override.get_value_element_as_str()}}}.")
    candidates = [k for k in keys if not any(part.isdigit() for part in k.split("."))]
    close = _closest(key, [k for k in candidates if not key.startswith(f"{k}.")])
    hint = (f"did you mean {' or '.join(close)}?" if close else
            f"the top-level keys are {', '.join(k for k in candidates if '.' not in k)}.")
    return (f"{override.input_line}: there is no key '{key}' in the configuration "
            f"(conf/{config_name}.yaml and its groups); {hint} `--cfg job` prints every key.")


def check_overrides(config_name: str, overrides: Iterable[str],
                    config_dir: Path = CONFIG_DIR) -> None:
    """An InputError naming every plain ``key=value`` override whose key the configuration
    ``config_name`` lacks, with the closest valid keys.

    The configuration is composed with Hydra's compose API, with the config-group selections
    (``law=self_saturating``) and the ``+``, ``++``, ``~`` and ``hydra`` overrides of the
    command line (every combination of a sweep's values); a key passes if any of those
    configurations has it. Anything Hydra itself refuses (a syntax error, an unknown group
    option, a missing ``+mix`` file) is left for Hydra to report.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        if not any(_is_value_override(o) for o in parsed):
            return
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            configs, groups = _composed(config_name, parsed)
    except (HydraException, OmegaConfBaseException):
        return
    unknown = [_unknown_key(o, configs[0], config_name) for o in parsed
               if _is_value_override(o) and o.key_or_group not in groups
               and not any(o.key_or_group in keys for keys in configs)]
    if unknown:
        raise InputError("\n".join(unknown))


def check_command_line(config_name: str, argv: Sequence[str] | None = None,
                       config_dir: Path = CONFIG_DIR) -> None:
    """Check the overrides of this command line (:func:`check_overrides`) against the configs
    in ``config_dir``; exit 2 with the message when one names an unknown key. ``--help``,
    ``--info``, ``--shell-completion`` and a config directory of the user's own
    (``--config-path``, ``--config-dir``) go to Hydra unchecked; ``--config-name`` is
    honoured."""
    args = get_args_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    if (args.help or args.hydra_help or args.info or args.shell_completion or args.config_path
            or args.config_dir):
        return
    exits_on_input_error(check_overrides)(args.config_name or config_name, args.overrides,
                                          config_dir)
