"""The run's checkpoint, ``checkpoints/last.ckpt``: when it is written, so that a killed run
resumes from it without skipping an evaluation."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn


class LastCheckpoint(L.Callback):
    """Saves the training state to ``path`` (overwriting it) every ``every_n_steps`` optimiser
    steps and after every validation during training.

    A step whose validation is due (a multiple of ``validation_steps``) is saved after that
    validation, not before it: Lightning does not validate again at the step a run resumes
    from, so a run killed during the validation resumes from the previous checkpoint and
    redoes it instead of skipping it. The last step is saved only after a validation there:
    a run that ends without one is validated after training
    (:func:`trainers.training.train`).
    """

    def __init__(self, path: Path, every_n_steps: int, validation_steps: int) -> None:
        super().__init__()
        self.path, self.every_n_steps, self.validation_steps = path, every_n_steps, validation_steps
        self.saved_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.saved_step = trainer.global_step  # a resumed run's checkpoint holds this step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step  # batches that accumulate gradients leave it unchanged
        if (step != self.saved_step and step % self.every_n_steps == 0
                and step % self.validation_steps and step < trainer.max_steps):
            self._save(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_step = trainer.global_step
