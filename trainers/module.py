"""The LightningModule: the GPT decoder, AdamW with a warmup schedule, per-language validation.

Every validation pass computes, for each evaluated language, the mean loss in nats over all
target tokens of its held-out windows, logs it as ``val_loss/<lang>`` and appends one record
``(tokens, language, loss)`` to :attr:`LanguageModel.evaluations`, where ``tokens`` is the
number of training tokens seen so far. The records travel in checkpoints, so a resumed run
keeps the evaluations made before it was interrupted; they become the run's pilot-table rows.
"""

import math
from typing import Any

import lightning as L
import torch

from trainers.model import GPT, GPTConfig

SCHEDULES = ("cosine", "wsd")


def learning_rate_factor(step: int, total: int, warmup: int, schedule: str = "cosine",
                         decay_fraction: float = 0.2, min_ratio: float = 0.1) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based) of ``total`` steps.

    Linear warmup over ``warmup`` steps, then ``"cosine"``: cosine decay to ``min_ratio`` at
    the last step; or ``"wsd"`` (warmup-stable-decay): constant, then linear decay to
    ``min_ratio`` over the last ``decay_fraction`` of the steps.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup - 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_steps = max(1, round(decay_fraction * total))
    decay_start = max(warmup, total - decay_steps)
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start + 1) / max(1, total - decay_start))
    return 1.0 - (1.0 - min_ratio) * progress


class LanguageModel(L.LightningModule):
    """A GPT trained on next-token prediction, validated per language.

    ``network`` holds :class:`~trainers.model.GPTConfig` fields, ``optimizer`` the AdamW and
    schedule settings (``lr``, ``weight_decay``, ``betas``, ``warmup_fraction``,
    ``schedule``, ``decay_fraction``, ``min_lr_ratio``), ``total_steps`` the run's optimiser
    steps and ``languages`` the evaluated languages in the order of the validation loaders.
    """

    def __init__(self, network: dict[str, Any], optimizer: dict[str, Any], total_steps: int,
                 languages: list[str], compile: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.gpt = GPT(GPTConfig(**network))
        if compile:
            self.gpt.compile()
        self.evaluations: list[dict[str, Any]] = []
        self.first_step = 0  # where this fit starts: 0, or a resumed run's checkpoint step
        self._sums = torch.zeros(len(languages), dtype=torch.float64)
        self._counts = torch.zeros(len(languages), dtype=torch.float64)

    # ------------------------------------------------------------------ training

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
                      ) -> torch.Tensor:
        inputs, targets = batch
        _, loss = self.gpt(inputs, targets)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        self.first_step = self.global_step

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (no weight decay on biases, norms and embeddings' 1-d params) + schedule."""
        settings = self.hparams.optimizer
        decay = [p for p in self.gpt.parameters() if p.requires_grad and p.dim() >= 2]
        no_decay = [p for p in self.gpt.parameters() if p.requires_grad and p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings["weight_decay"]},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=settings["lr"], betas=tuple(settings["betas"]),
            foreach=True)
        total = self.hparams.total_steps
        warmup = max(1, round(settings["warmup_fraction"] * total))

        def factor(step: int) -> float:
            return learning_rate_factor(step, total, warmup, settings["schedule"],
                                        settings["decay_fraction"], settings["min_lr_ratio"])

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ validation

    def on_validation_epoch_start(self) -> None:
        self._sums = torch.zeros(len(self.hparams.languages), dtype=torch.float64,
                                 device=self.device)
        self._counts = torch.zeros_like(self._sums)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int,
                        dataloader_idx: int = 0) -> None:
        total, count = self.gpt.token_losses(*batch)
        self._sums[dataloader_idx] += total.double()
        self._counts[dataloader_idx] += count.double()

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._sums, reduce_op="sum")
        counts = self.trainer.strategy.reduce(self._counts, reduce_op="sum")
        losses = (sums / counts.clamp_min(1)).tolist()
        for language, loss in zip(self.hparams.languages, losses, strict=True):
            self.log(f"val_loss/{language}", loss, add_dataloader_idx=False)
        if self.trainer.sanity_checking:
            return
        tokens = self.trainer.datamodule.tokens_after_steps(self.global_step)
        self.evaluations = [e for e in self.evaluations if e["tokens"] != tokens]
        self.evaluations.extend({"tokens": tokens, "language": language, "loss": loss}
                                for language, loss in zip(self.hparams.languages, losses,
                                                          strict=True))

    # ------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["evaluations"] = list(self.evaluations)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.evaluations = list(checkpoint.get("evaluations", []))
