"""Training speed: the Lightning trainer against a plain PyTorch loop, side by side.

Both train the same GPT preset (``conf/model/<preset>.yaml``) on the same mixture-sampled
sequences (:class:`trainers.data.MixtureDataModule`, uniform over the corpus languages) with
the same batch size, AdamW and learning-rate schedule, in this one process, alternating
(plain, Lightning, plain, Lightning, ...) so that both see the same machine state; the
median tokens per second of each is reported with their ratio. Lightning runs without
validation, checkpoints or loggers (the same work as the plain loop); a last row times it as
``train.py`` configures it (progress bar, CSV and TensorBoard loggers, checkpoints).

    python -m benchmarks.train_speed                      # demo corpus, gpt_small, CPU
    python -m benchmarks.train_speed --quick              # Django corpus, gpt_tiny, ~1 minute
    python -m benchmarks.train_speed --model gpt_gpu --device cuda --tokens 5e6   # a GPU
    python -m benchmarks.train_speed --quick --sweep      # also time a pilot sweep

``--sweep`` also times the pilot sweep end to end (design table, ``python train.py -m
experiment=pilots``, collection): m = 4 languages, the paper's 3 x m x 2 design plus
monolingual runs, on the corpus given (``--quick``: a 4-run design on the Django corpus).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf

from trainers import corpus as corpus_io
from trainers import tokeniser
from trainers.data import MixtureDataModule

REPO = Path(__file__).resolve().parents[1]
from trainers.model import GPT, GPTConfig  # noqa: E402
from trainers.module import LanguageModel, learning_rate_factor  # noqa: E402
from trainers.training import NETWORK_KEYS  # noqa: E402


def build_django_corpus(directory: Path) -> Path:
    """The tiny Django corpus (en, de, fr, es) in ``directory``."""
    output = directory / "django"
    corpus_io.build_corpus(corpus_io.django_documents(["en", "de", "fr", "es"]), output,
                           corpus_io.SOURCES["django"])
    return output


def datamodule(corpus: Path, context: int, batch: int, tokens: int) -> MixtureDataModule:
    """Uniform mixture over the corpus languages, ``tokens`` training tokens."""
    languages = corpus_io.corpus_languages(corpus)
    module = MixtureDataModule(corpus, languages, [1 / len(languages)] * len(languages),
                               languages, tokens, context, batch, seed=0)
    module.setup("fit")
    return module


#: Steps of every timed run left out of the timing (compilation, allocator warm-up).
SKIP = 10


def plain_loop(preset: dict, vocab: int, data: MixtureDataModule, device: str,
               bf16: bool) -> float:
    """Seconds of a plain PyTorch training loop over ``data``'s sequences after ``SKIP``."""
    torch.manual_seed(0)
    network = {key: preset[key] for key in NETWORK_KEYS}
    model = GPT(GPTConfig(vocab_size=vocab, **network)).to(device)
    if preset["compile"]:
        model.compile()
    settings = preset["optimizer"]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=settings["lr"], betas=tuple(settings["betas"]),
                                  foreach=True)
    total = data.total_steps()
    warmup = max(1, round(settings["warmup_fraction"] * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(
        step, total, warmup, settings["schedule"], settings["decay_fraction"],
        settings["min_lr_ratio"]))
    model.train()
    started = time.perf_counter()
    for step, (inputs, targets) in enumerate(data.train_dataloader()):
        if step == SKIP:
            synchronise(device)
            started = time.perf_counter()
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device,
                                                                           non_blocking=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    loss.item()
    synchronise(device)
    return time.perf_counter() - started


class StepTimer(L.Callback):
    """Seconds from the start of step ``SKIP`` to the end of training."""

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == SKIP:
            synchronise(trainer.strategy.root_device.type)
            self.started = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, *args: object) -> None:
        synchronise(trainer.strategy.root_device.type)
        self.seconds = time.perf_counter() - self.started


def lightning_loop(preset: dict, vocab: int, data: MixtureDataModule, device: str, bf16: bool,
                   as_train_py: bool = False, root: Path | None = None) -> float:
    """Seconds of ``Trainer.fit`` over the same sequences after ``SKIP`` (validation off)."""
    torch.manual_seed(0)
    network = {key: preset[key] for key in NETWORK_KEYS}
    network["vocab_size"] = vocab
    timer = StepTimer()
    module = LanguageModel(network, preset["optimizer"], data.total_steps(), ["-"],
                           compile=preset["compile"])
    extra = {}
    if as_train_py:
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

        extra = {"logger": [CSVLogger(root, name="logs"), TensorBoardLogger(root, name="logs")],
                 "callbacks": [timer, ModelCheckpoint(root / "ckpt", save_last=True,
                                                      save_top_k=0, every_n_train_steps=100)],
                 "enable_progress_bar": True, "log_every_n_steps": 10}
    else:
        extra = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                 "callbacks": [timer]}
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                        precision="bf16-mixed" if bf16 else "32-true", max_steps=data.total_steps(),
                        max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0,
                        gradient_clip_val=1.0, enable_model_summary=False,
                        default_root_dir=str(root or tempfile.gettempdir()), **extra)
    trainer.fit(module, train_dataloaders=data.train_dataloader())
    return timer.seconds


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_sweep(corpus: Path, quick: bool, work: Path) -> float:
    """Wall seconds of design + sweep + collection (subprocesses, as a user runs them)."""
    design = work / "sweep" / "design.csv"
    languages = "[" + ",".join(corpus_io.corpus_languages(corpus)) + "]"
    design_args = (["budgets=[2e4]", "focal_shares=[0.7]", "monolingual=false"] if quick
                   else ["budgets=[1e5,3e5]"])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "climb_bayes.design", f"languages={languages}",
                    *design_args, f"output={design}"], cwd=REPO, check=True)
    subprocess.run([sys.executable, "train.py", "-m", "experiment=pilots",
                    f"data.corpus={corpus}", f"experiment.design={design}",
                    f"experiment.output={work / 'sweep'}", "data.max_epochs=10",
                    f"hydra.sweep.dir={work / 'hydra'}"], cwd=REPO, check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="Django corpus, gpt_tiny, 1e5 tokens, 2 repeats")
    parser.add_argument("--corpus", default=str(REPO / "corpora" / "libreoffice"))
    parser.add_argument("--model", default=None, help="preset in conf/model (gpt_small)")
    parser.add_argument("--tokens", type=float, default=None, help="tokens per timed run")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sweep", action="store_true", help="also time the pilot sweep")
    args = parser.parse_args()
    preset_name = args.model or ("gpt_tiny" if args.quick else "gpt_small")
    tokens = int(args.tokens or (1e5 if args.quick else 1e6))
    repeats = args.repeats or (2 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = args.device == "cuda"
    preset = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model"
                                                   / f"{preset_name}.yaml"))
    per_step = args.batch * preset["context"]  # whole batches only: one shape, no recompiles
    steps = max(SKIP + 5, round(tokens / per_step))
    tokens = steps * per_step
    timed = (steps - SKIP) * per_step
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = build_django_corpus(work) if args.quick else Path(args.corpus)
        if not (corpus / tokeniser.FILENAME).is_file():
            sys.exit(f"no corpus at {corpus}: build it with `python -m trainers.corpus "
                     f"source=libreoffice vocab_size=8192 output={corpus}`, or use --quick")
        vocab = tokeniser.load(corpus).get_vocab_size()
        data = datamodule(corpus, preset["context"], args.batch, tokens)
        warm = datamodule(corpus, preset["context"], args.batch, (SKIP + 5) * per_step)
        plain_loop(preset, vocab, warm, args.device, bf16)  # warm-up: first-call costs
        lightning_loop(preset, vocab, warm, args.device, bf16)
        times: dict[str, list[float]] = {"plain PyTorch loop": [], "Lightning Trainer": []}
        for _ in range(repeats):
            times["plain PyTorch loop"].append(plain_loop(preset, vocab, data, args.device,
                                                          bf16))
            times["Lightning Trainer"].append(lightning_loop(preset, vocab, data, args.device,
                                                             bf16))
        full = lightning_loop(preset, vocab, data, args.device, bf16, as_train_py=True,
                              root=work / "full")
        sweep = time_sweep(corpus, args.quick, work) if args.sweep else None

    parameters = GPT(GPTConfig(vocab_size=vocab, **{k: preset[k] for k in NETWORK_KEYS}))
    print(f"\nmodel {preset_name} ({parameters.num_parameters() / 1e6:.2f}M parameters, "
          f"vocab {vocab}, context {preset['context']}), batch {args.batch}, {tokens:,} "
          f"tokens per run, device {args.device}"
          f"{' (bf16)' if bf16 else ''}, {torch.get_num_threads()} threads, median of "
          f"{repeats}, the first {SKIP} steps of each run untimed")
    print(f"{'implementation':<42} {'seconds':>9} {'tokens/s':>12}")
    rates = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rates[name] = timed / median
        print(f"{name:<42} {median:>9.2f} {rates[name]:>12,.0f}")
    print(f"{'Lightning as train.py (bar, loggers, ckpt)':<42} {full:>9.2f} "
          f"{timed / full:>12,.0f}")
    ratio = rates["Lightning Trainer"] / rates["plain PyTorch loop"]
    print(f"ratio Lightning / plain: {ratio:.3f} (goal >= 0.9)")
    if sweep is not None:
        what = "quick: 4 runs, Django" if args.quick else "m = 4, 32 runs"
        print(f"pilot sweep wall time ({what}): {sweep:.1f} s")


if __name__ == "__main__":
    main()
