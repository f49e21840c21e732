"""One training run from a Hydra config: what ``train.py`` does.

A run is resolved from the config into a :class:`RunSpec` (its id, budget, mix and evaluated
languages), checked against the corpus (every problem is an :class:`InputError` raised before
training starts), trained with Lightning, and its per-language validation losses are written
as pilot-table rows to ``<experiment.output>/<run_id>/pilots.csv``.

Where the mix comes from, in order: a row of a pilot design table (``experiment.design`` and
``experiment.row``, the pilot sweep), the ``mix`` config group (``+mix=posterior_mean``: a
file ``conf/mix/<name>.yaml`` with ``shares: {lang: share}``; a mix written by
``climb_bayes.solve`` trains for its ``target_tokens`` unless ``experiment.tokens`` is given),
or uniform over ``data.languages`` (all corpus languages when null).

Run directory (``<experiment.output>/<run_id>/``): ``run.json`` (what the run is),
``config.yaml``, ``checkpoints/last.ckpt``, ``logs/version_<n>/`` (CSV and TensorBoard, one
folder per attempt), and last,
written atomically, ``pilots.csv``. A run whose ``pilots.csv`` exists is finished and is
skipped; one with a checkpoint resumes from it (``ckpt_path="last"``).
"""

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from climb_bayes.cli import count, output_directory, positive
from climb_bayes.errors import InputError, plain
from climb_bayes.io import write_text
from climb_bayes.mix import MixFile, check_shares
from climb_bayes.pilots import SHARE_PREFIX, read_csv, write_pilots
from trainers import corpus as corpus_io
from trainers import tokeniser
from trainers.data import MixtureDataModule, token_stream
from trainers.mixture import epochs_needed
from trainers.module import LanguageModel

# MixtureDataModule restores its position from the checkpoint, so resuming mid-epoch is exact
warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")

PILOTS_FILE = "pilots.csv"
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
NETWORK_KEYS = ("context", "n_layer", "n_head", "n_embd", "dropout", "bias")


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


# ----------------------------------------------------------------------------- the mix


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


# ----------------------------------------------------------------------------- resolving


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
    try:
        tokens_value = float(tokens)
    except (TypeError, ValueError):
        tokens_value = math.nan
    if not (math.isfinite(tokens_value) and tokens_value >= 1
            and tokens_value == round(tokens_value)):
        raise InputError(f"{origin}: the budget tokens={plain(tokens)} must be a whole number of "
                         f"tokens >= 1 (e.g. experiment.tokens=2e5).")
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
    languages = corpus_io.corpus_languages(root)
    if not languages:
        raise InputError(f"data.corpus={root}: no language directories (<lang>/train/).")
    return languages


def make_datamodule(cfg: DictConfig, spec: RunSpec) -> MixtureDataModule:
    """The data module of a run, set up (streams loaded, plan made) and checked."""
    datamodule = MixtureDataModule(
        corpus=cfg.data.corpus, languages=spec.languages, shares=spec.shares,
        eval_languages=spec.eval_languages, budget=spec.tokens, context=cfg.model.context,
        batch_size=cfg.data.batch_size, seed=spec.seed, val_tokens=cfg.data.val_tokens,
        num_workers=cfg.data.num_workers)
    # reading the shards raises InputError for missing, empty or corrupt ones
    streams = {lang: len(s) for lang, s in zip(spec.languages, _streams(datamodule),
                                                strict=True)}
    shares = dict(zip(spec.languages, spec.shares, strict=True))
    needed = epochs_needed(shares, spec.tokens, streams)
    too_many = {lang: round(e, 2) for lang, e in needed.items() if e > cfg.data.max_epochs}
    if too_many:
        raise InputError(
            f"{spec.origin}: with tokens={spec.tokens} the run needs {too_many} epochs of "
            f"these languages' training data (available tokens: "
            f"{ {lang: streams[lang] for lang in too_many} }), more than "
            f"data.max_epochs={cfg.data.max_epochs}. Lower the budget or these shares, or "
            f"allow more repetition with data.max_epochs=...")
    short = [lang for lang, n in streams.items() if shares[lang] > 0 and n < cfg.model.context + 1]
    if short:
        raise InputError(f"data.corpus={cfg.data.corpus}: {', '.join(short)} have fewer "
                         f"training tokens than one sequence ({cfg.model.context + 1}).")
    datamodule.setup("fit")
    return datamodule


def _streams(datamodule: MixtureDataModule) -> list[Any]:
    """Every stream the run reads (encoded and cached now); the training ones returned."""
    for lang in datamodule.eval_languages:
        token_stream(datamodule.corpus, lang, corpus_io.VALID)
    return [token_stream(datamodule.corpus, lang, corpus_io.TRAIN)
            for lang in datamodule.languages]


# ----------------------------------------------------------------------------- training


def pilot_rows(spec: RunSpec, evaluations: list[dict[str, Any]], model: str) -> pd.DataFrame:
    """The run's evaluations as pilot-table rows."""
    rows = [{"run_id": spec.run_id, "tokens": e["tokens"], "language": e["language"],
             "loss": e["loss"], **spec.share_columns(), "seed": spec.seed, "model": model}
            for e in sorted(evaluations, key=lambda e: e["tokens"])]
    return pd.DataFrame(rows)


def _loggers(cfg: DictConfig, directory: Path) -> list[Logger]:
    known = {"csv": CSVLogger, "tensorboard": TensorBoardLogger}
    unknown = [name for name in cfg.trainer.loggers if name not in known]
    if unknown:
        raise InputError(f"trainer.loggers: unknown {unknown}; choose from {list(known)}.")
    # one version_<n> folder per attempt: a resumed run's logs go beside the first ones
    return [known[name](save_dir=str(directory), name="logs") for name in cfg.trainer.loggers]


class LastCheckpoint(ModelCheckpoint):
    """``checkpoints/last.ckpt`` every ``every_n_train_steps`` steps and after every validation.

    A step whose validation is due is saved after that validation, not before it, so a run
    killed in between resumes from the previous checkpoint and redoes the evaluation instead
    of skipping it.
    """

    def __init__(self, dirpath: Path, every_n_train_steps: int) -> None:
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0,
                         every_n_train_steps=every_n_train_steps)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        batches = trainer.global_step * trainer.accumulate_grad_batches
        if batches % int(trainer.val_check_interval) and trainer.global_step < trainer.max_steps:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def build_trainer(cfg: DictConfig, directory: Path, datamodule: MixtureDataModule,
                  callbacks: list[L.Callback] | None = None) -> tuple[L.Trainer, int]:
    """The Lightning trainer of a run (checkpoints, loggers, validation schedule) and the
    run's number of optimiser steps (which depends on the number of devices)."""
    tc = cfg.trainer
    checkpoint = LastCheckpoint(directory / CHECKPOINTS, tc.checkpoint_every_steps)
    trainer = L.Trainer(
        accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes,
        strategy=tc.strategy, precision=tc.precision, max_epochs=1, check_val_every_n_epoch=None,
        num_sanity_val_steps=0, accumulate_grad_batches=tc.accumulate_grad_batches,
        gradient_clip_val=tc.gradient_clip_val, log_every_n_steps=tc.log_every_n_steps,
        enable_progress_bar=tc.progress_bar, enable_model_summary=tc.progress_bar,
        logger=_loggers(cfg, directory), callbacks=[checkpoint, *(callbacks or [])],
        deterministic=tc.deterministic, default_root_dir=str(directory))
    total_steps = datamodule.total_steps(trainer.world_size, tc.accumulate_grad_batches)
    evaluations = max(1, int(cfg.experiment.evaluations))
    # validate every `interval` training batches (evenly spaced); train.py validates at the
    # end too if the last step is not a multiple of it
    trainer.fit_loop.epoch_loop.max_steps = total_steps
    trainer.val_check_interval = math.ceil(total_steps / evaluations) * tc.accumulate_grad_batches
    return trainer, total_steps


def _write_run_file(directory: Path, spec: RunSpec, cfg: DictConfig) -> None:
    """Record what the run is; a directory holding a different run is an InputError."""
    record = {**asdict(spec), "model": cfg.model.name}
    record.pop("origin")
    file = directory / RUN_FILE
    if file.is_file():
        existing = json.loads(file.read_text())
        if existing != json.loads(json.dumps(record)):
            raise InputError(f"{directory}: holds a different run ({file} says {existing}). "
                             f"Choose another experiment.run_id or experiment.output, or "
                             f"delete the directory.")
        return
    write_text(file, json.dumps(record, indent=2) + "\n")


def check_options(cfg: DictConfig) -> None:
    """The run's sizes and its output directory, checked before anything is read (the budget
    and the mix are checked by :func:`resolve_run`)."""
    output_directory(cfg.experiment.output, "experiment.output", "runs/train",
                     "one directory per run")
    count(cfg.model.context, "model.context", "sequence length in tokens", "model.context=64")
    count(cfg.data.batch_size, "data.batch_size", "number of sequences per batch",
          "data.batch_size=16")
    count(cfg.experiment.evaluations, "experiment.evaluations", "number of validation passes",
          "experiment.evaluations=4")
    positive(cfg.data.max_epochs, "data.max_epochs", "repetition cap in epochs",
             "data.max_epochs=10")


def train(cfg: DictConfig) -> Path:
    """Run (or resume, or skip if finished) the configured training; return its pilots.csv."""
    check_options(cfg)
    corpus_languages = check_corpus(cfg.data.corpus)
    spec = resolve_run(cfg, corpus_languages)
    directory = Path(cfg.experiment.output) / spec.run_id
    result = directory / PILOTS_FILE
    if result.is_file() and cfg.experiment.skip_finished:
        print(f"run {spec.run_id}: finished ({result}); skipped")
        return result
    datamodule = make_datamodule(cfg, spec)
    _write_run_file(directory, spec, cfg)
    write_text(directory / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))
    L.seed_everything(spec.seed, workers=True, verbose=False)
    trainer, total_steps = build_trainer(cfg, directory, datamodule)
    network = {key: cfg.model[key] for key in NETWORK_KEYS}
    network["vocab_size"] = tokeniser.load(cfg.data.corpus).get_vocab_size()
    module = LanguageModel(network, OmegaConf.to_container(cfg.model.optimizer, resolve=True),
                           total_steps, spec.eval_languages, compile=cfg.model.compile)
    last = directory / CHECKPOINTS / "last.ckpt"
    resume = "last" if cfg.experiment.resume and last.is_file() else None
    if resume:
        print(f"run {spec.run_id}: resuming from {last}")
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    seconds = time.perf_counter() - started
    if trainer.global_step < total_steps:  # never write a run with missing steps
        raise RuntimeError(f"run {spec.run_id}: training stopped at step "
                           f"{trainer.global_step} of {total_steps}; its checkpoint {last} "
                           f"is kept, so running the same command again resumes it.")
    if not module.evaluations or module.evaluations[-1]["tokens"] != spec.tokens:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    if trainer.global_rank == 0:
        frame = pilot_rows(spec, module.evaluations, cfg.model.name)
        write_pilots(frame, result)
        done = spec.tokens - datamodule.plan.tokens_after(datamodule.first_sequence)
        print(f"run {spec.run_id}: {spec.tokens} tokens, {len(frame)} pilot rows -> {result} "
              f"({done} tokens trained now, {done / seconds:,.0f} tokens/s over "
              f"{seconds:.1f} s)")
    return result
