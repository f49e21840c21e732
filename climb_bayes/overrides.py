"""Unknown keys on a command line, caught before Hydra starts.

Every entry point (``python -m climb_bayes.<command>``, ``python -m trainers.corpus``,
``python -m trainers.sweep``, ``python train.py``) calls :func:`check_command_line` in its
``__main__`` block: an override ``key=value`` of a key that its composed configuration does not
have exits with status 2, naming the key and the closest valid keys (Hydra's own message would
advise ``+key=value``, which adds a key nothing reads).
"""

import difflib
import itertools
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from climb_bayes.cli import CONFIG_DIR
from climb_bayes.errors import InputError, exits_on_input_error

#: Valid keys offered for an unknown one.
SUGGESTIONS = 3


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
