"""One training run from a Hydra config: what ``train.py`` does.

The run is resolved and checked (:mod:`trainers.runs`), trained with Lightning, and its
per-language validation losses are written as pilot-table rows to
``<experiment.output>/<run_id>/pilots.csv``.

Run directory (``<experiment.output>/<run_id>/``): ``run.json`` (what the run is),
``config.yaml``, ``checkpoints/last.ckpt`` (:mod:`trainers.checkpoint`), ``logs/version_<n>/``
(CSV and TensorBoard, one folder per attempt), and last, written atomically, ``pilots.csv``.
A run whose ``pilots.csv`` exists is finished and is skipped; one with a checkpoint resumes
from it.
"""

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from climb_bayes.cli import count, output_directory, positive
from climb_bayes.data.table_files import write_pilots
from climb_bayes.errors import InputError
from climb_bayes.io import write_text
from trainers import tokeniser
from trainers.checkpoint import LastCheckpoint
from trainers.corpus_reader import TRAIN, VALID
from trainers.data import MixtureDataModule, token_stream
from trainers.mixture import epochs_needed
from trainers.module import LanguageModel
from trainers.runs import RunSpec, check_corpus, resolve_run

PILOTS_FILE = "pilots.csv"
RUN_FILE = "run.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
NETWORK_KEYS = ("context", "n_layer", "n_head", "n_embd", "dropout", "bias")


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
        token_stream(datamodule.corpus, lang, VALID)
    return [token_stream(datamodule.corpus, lang, TRAIN)
            for lang in datamodule.languages]


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


def build_trainer(cfg: DictConfig, directory: Path, datamodule: MixtureDataModule
                  ) -> tuple[L.Trainer, int]:
    """The Lightning trainer of a run (checkpoints, loggers, validation schedule) and the
    run's number of optimiser steps (which depends on the number of devices)."""
    tc = cfg.trainer
    # Lightning resolves the devices (-1: every GPU) into processes when it sets up the
    # strategy; the budget in steps and the validation schedule need their number first
    world_size = L.Fabric(accelerator=tc.accelerator, devices=tc.devices,
                          num_nodes=tc.num_nodes, strategy=tc.strategy).world_size
    total_steps = datamodule.total_steps(world_size, tc.accumulate_grad_batches)
    # validate every `interval` steps (evenly spaced); train() validates at the end too if
    # the last step is not a multiple of it
    interval = math.ceil(total_steps / max(1, int(cfg.experiment.evaluations)))
    checkpoint = LastCheckpoint(directory / LAST_CHECKPOINT, tc.checkpoint_every_steps,
                                interval)
    trainer = L.Trainer(
        accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes,
        strategy=tc.strategy, precision=tc.precision, max_epochs=1, max_steps=total_steps,
        val_check_interval=interval * tc.accumulate_grad_batches, check_val_every_n_epoch=None,
        num_sanity_val_steps=0, accumulate_grad_batches=tc.accumulate_grad_batches,
        gradient_clip_val=tc.gradient_clip_val, log_every_n_steps=tc.log_every_n_steps,
        enable_progress_bar=tc.progress_bar, enable_model_summary=tc.progress_bar,
        logger=_loggers(cfg, directory), callbacks=[checkpoint], enable_checkpointing=False,
        deterministic=tc.deterministic, default_root_dir=str(directory))
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
    last = directory / LAST_CHECKPOINT
    resume = cfg.experiment.resume and last.is_file()
    if resume:
        print(f"run {spec.run_id}: resuming from {last}")
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if resume else None)
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
        done = spec.tokens - datamodule.tokens_after_steps(module.first_step)
        print(f"run {spec.run_id}: {spec.tokens} tokens, {len(frame)} pilot rows -> {result} "
              f"({done} tokens trained now, {done / seconds:,.0f} tokens/s over "
              f"{seconds:.1f} s)")
    return result
