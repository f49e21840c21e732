"""What a run is: its :class:`RunSpec` (id, budget, mix, evaluated languages), resolved from
the Hydra config and checked against the corpus before anything is trained (every problem is
an :class:`InputError`).

Where the mix comes from, in order: a row of a pilot design table (``experiment.design`` and
``experiment.row``, the pilot sweep), the ``mix`` config group (``+mix=posterior_mean``: a
file ``conf/mix/<name>.yaml`` with ``shares: {lang: share}``; a mix written by
``climb_bayes.solve`` trains for its ``target_tokens`` unless ``experiment.tokens`` is given),
or uniform over ``data.languages`` (all corpus languages when null).
"""

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from climb_bayes.cli import budget
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.table_files import read_csv
from climb_bayes.decide.mix_file import MixFile, check_shares
from climb_bayes.errors import InputError, plain
from trainers import corpus_reader, tokeniser


@dataclass(frozen=True)
class RunSpec:
    """What a run is: id, budget, training languages with shares, evaluated languages."""

    run_id: str
    tokens: int
    languages: list[str]
    shares: list[float]
    eval_languages: list[str]
    seed: int
    origin: str  # where the mix came from, for messages

    def share_columns(self) -> dict[str, float]:
        """``share_<lang>`` -> share, as in the pilot table."""
        return {SHARE_PREFIX + lang: share
                for lang, share in zip(self.languages, self.shares, strict=True)}


def read_design(path: str | Path) -> pd.DataFrame:
    """A pilot design table (``run_id``, ``tokens``, ``share_<lang>``...) with checked columns."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such design table. Write one with `python -m "
                         f"climb_bayes.design languages=[en,de,fr,es] budgets=[...] "
                         f"output={file}`.")
    design = read_csv(file)
    shares = [c for c in design.columns if c.startswith(SHARE_PREFIX)]
    missing = [c for c in ("run_id", "tokens") if c not in design.columns]
    if missing or not shares:
        raise InputError(f"{file}: a design table needs columns run_id, tokens and one "
                         f"share_<lang> per language; missing {missing or 'share_ columns'}.")
    if design.empty:
        raise InputError(f"{file}: the design table has no runs.")
    design["run_id"] = design["run_id"].astype(str).str.strip()
    repeated = design["run_id"][design["run_id"].duplicated()].tolist()
    if repeated:
        raise InputError(f"{file}: run id(s) {', '.join(repeated[:5])} appear more than once. "
                         f"Give every run its own id.")
    return design


def _mix_name() -> str | None:
    """The name of the mix config chosen on the command line, if any."""
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get("mix")


def _tokens_on_command_line() -> bool:
    """Whether ``experiment.tokens`` was set on the command line (not left at its default)."""
    if not HydraConfig.initialized():
        return False
    return any(override.split("=", 1)[0].lstrip("+~") == "experiment.tokens"
               for override in HydraConfig.get().overrides.task)


def _mix_budget(mix: MixFile, origin: str, tokens: Any) -> Any:
    """The budget of a run of a mix file: the ``target_tokens`` the solver wrote into it,
    unless ``experiment.tokens`` is given on the command line, which wins with a warning when
    the two differ. Mix files without it (written by hand) train for ``experiment.tokens``."""
    target = mix.target_tokens
    if target is None:
        return tokens
    if not _tokens_on_command_line():
        return target
    if float(tokens) != float(target):
        warnings.warn(f"{origin} was solved for target_tokens={float(target):.4g}, but "
                      f"experiment.tokens={float(tokens):.4g} trains it for another budget; the "
                      f"mix is optimal for its own. Leave experiment.tokens out to train for "
                      f"{float(target):.4g}.", stacklevel=2)
    return tokens


def resolve_run(cfg: DictConfig, corpus_languages: list[str]) -> RunSpec:
    """The run the config asks for (see the module docstring for where the mix comes from)."""
    experiment = cfg.experiment
    seed = int(experiment.seed)
    if experiment.get("design") is not None and experiment.get("row") is not None:
        design = read_design(experiment.design)
        row = int(experiment.row)
        if not 0 <= row < len(design):
            raise InputError(f"experiment.row={row}: the design {experiment.design} has rows "
                             f"0..{len(design) - 1}.")
        record = design.iloc[row]
        origin = f"{experiment.design} row {row} (run {record['run_id']})"
        shares = {c[len(SHARE_PREFIX):]: record[c] for c in design.columns
                  if c.startswith(SHARE_PREFIX)}
        run_id, tokens = str(record["run_id"]), record["tokens"]
    else:
        chosen = cfg.get("mix")
        mix = None
        if chosen is not None:
            name = _mix_name() or "mix"
            origin = f"mix '{name}' (conf/mix/{name}.yaml or a hydra.searchpath directory)"
            mix = MixFile.parse(OmegaConf.to_container(chosen, resolve=True), origin)
            shares = mix.shares
        else:
            name = "uniform"
            languages = (list(cfg.data.languages) if cfg.data.get("languages") is not None
                         else corpus_languages)
            origin = f"the uniform mix over data.languages={languages}"
            shares = {lang: 1 / len(languages) for lang in languages}
        tokens = experiment.tokens if mix is None else _mix_budget(mix, origin,
                                                                    experiment.tokens)
        run_id = experiment.get("run_id") or f"{name}-{float(tokens):.3g}"
    tokens_value = budget(tokens, f"{origin}: tokens", "experiment.tokens=2e5")
    if tokens_value != round(tokens_value):
        raise InputError(f"{origin}: the budget tokens={plain(tokens)} must be a whole number of "
                         f"tokens (e.g. experiment.tokens=2e5).")
    values = check_shares(shares, origin, corpus_languages, "the corpus",
                          "Fix the language names, or build a corpus that has them "
                          "(python -m trainers.corpus languages=[...]).")
    evaluated = cfg.data.get("eval_languages")
    eval_languages = list(evaluated) if evaluated is not None else list(values)
    unknown = [lang for lang in eval_languages if lang not in corpus_languages]
    if unknown:
        raise InputError(f"data.eval_languages: {', '.join(unknown)} not in the corpus "
                         f"{cfg.data.corpus} (it has {', '.join(corpus_languages)}).")
    return RunSpec(run_id=run_id, tokens=int(tokens_value), languages=list(values),
                   shares=list(values.values()), eval_languages=eval_languages, seed=seed,
                   origin=origin)


def check_corpus(path: str | Path) -> list[str]:
    """The corpus's languages; an InputError if it is not a built corpus."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"data.corpus={root}: no such directory. Build it first, e.g. "
                         f"`python -m trainers.corpus source=libreoffice output={root}` (the "
                         f"demo corpus) or `source=django` (the tiny one).")
    if not (root / tokeniser.FILENAME).is_file():
        raise InputError(f"data.corpus={root}: no {tokeniser.FILENAME}. Build the corpus with "
                         f"`python -m trainers.corpus`, or tokenise your own with `python -m "
                         f"trainers.corpus source=directory input={root}`.")
    languages = corpus_reader.corpus_languages(root)
    if not languages:
        raise InputError(f"data.corpus={root}: no language directories (<lang>/train/).")
    return languages
