"""What ``aegen fit|validate|test`` print: the progress display and the filters for known third-party noise.

- ``EpochLines``: the progress display when the output is not a terminal (SLURM logs, ``| tee``):
  one plain line per training epoch.
- ``LossBar``: the rich bar in a terminal, showing the same mean losses.
- ``ModelTable``: Lightning's model summary without its FLOPs where none were counted.
- ``quiet_known_noise``: filters for known third-party messages, each by its exact text and source.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar, RichModelSummary, RichProgressBar
from pytorch_lightning.utilities.model_summary.model_summary import get_human_readable_count


class TrainMeans:
    """The epoch's mean of each ``train/*`` loss so far (this process's batches, no extra synchronisation): the
    model's own means over every step where it keeps them (``GenerativeAE.train_means``), else the mean of the
    values logged, summed on the device; a value not logged again since the last batch is not recounted."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, tuple[Any, int]] = {}
        self._seen: dict[str, torch.Tensor] = {}

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        """Count this batch's ``train/*`` values of ``trainer.callback_metrics``."""
        for key, value in metrics.items():
            if key.startswith("train/") and value is not self._seen.get(key):
                self._seen[key] = value
                total, count = self._sums.get(key, (0.0, 0))
                self._sums[key] = (value.detach().float() + total, count + 1)

    def means(self, module: pl.LightningModule | None = None) -> dict[str, float]:
        """Loss name -> its mean so far, sorted by name (a transfer per loss, or per kind of step the model has)."""
        own = module.train_means() if hasattr(module, "train_means") else {}
        logged = {key: float(total) / count for key, (total, count) in self._sums.items() if key not in own}
        return dict(sorted({**logged, **own}.items()))


class EpochLines(ProgressBar):
    """A progress "bar" for logs: after each training epoch one line with the epoch, the global step, the
    epoch's mean of each ``train/*`` loss (``TrainMeans``), ``val/loss`` and the epoch's seconds. ``aegen fit``
    uses it instead of the rich bar when stdout is not a terminal."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._means = TrainMeans()
        self._start = 0.0
        self._validated = False

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._means.reset()
        self._start, self._validated = time.monotonic(), False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._means.add(trainer.callback_metrics)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        parts = [f"epoch {trainer.current_epoch}", f"step {trainer.global_step}"]
        parts += [f"{key} {mean:.4g}" for key, mean in self._means.means(pl_module).items()]
        val = trainer.callback_metrics.get("val/loss")
        if val is not None and self._validated:  # not a previous epoch's value
            parts.append(f"val/loss {val.item():.4g}")
        parts.append(f"{time.monotonic() - self._start:.1f}s")
        print("  ".join(parts), flush=True)


class LossBar(RichProgressBar):
    """Lightning's rich progress bar showing the epoch's mean ``train/*`` losses (as ``EpochLines`` prints them)
    and the latest ``val/loss`` in place of ``v_num``; the means are read at most every ``every`` seconds
    (and at the epoch's end), so the bar costs a device synchronisation only that often."""

    def __init__(self, every: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.every = every
        self._means = TrainMeans()
        self._shown: dict[str, str] = {}
        self._read = float("-inf")
        self._validated = False

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._means.reset()
        self._read = float("-inf")
        super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._means.add(trainer.callback_metrics)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._read = float("-inf")  # the epoch's final means
        super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated, self._read = True, float("-inf")
        super().on_validation_end(trainer, pl_module)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)  # a logger's version string cut to 4 characters ("on_1"): not a metric
        if time.monotonic() - self._read >= self.every:
            self._read = time.monotonic()
            self._shown = {key: f"{mean:.4g}" for key, mean in self._means.means(pl_module).items()}
            val = trainer.callback_metrics.get("val/loss")
            if val is not None and self._validated:
                self._shown["val/loss"] = f"{val.item():.4g}"
        return {**self._shown, **items}


class ModelTable(RichModelSummary):
    """Lightning's rich model summary without its FLOPs column and total where no FLOPs were counted (a model
    without an ``example_input_array`` reads "Total FLOPs: 0")."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                       total_training_modes, total_flops, **summarize_kwargs)
            return
        from rich import get_console
        from rich.table import Table

        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        for name, _ in columns:
            numeric = name in ("Params", "Params per Device", "In sizes", "Out sizes")
            table.add_column(name, justify="right" if numeric else "left", style="dim" if name == " " else None)
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        grid = Table.grid(expand=True)
        grid.add_column()
        rows = {"Trainable params": get_human_readable_count(trainable_parameters),
                "Non-trainable params": get_human_readable_count(total_parameters - trainable_parameters),
                "Total params": get_human_readable_count(total_parameters),
                "Total estimated model params size (MB)": f"{model_size:,.3f}",
                "Modules in train mode": total_training_modes["train"],
                "Modules in eval mode": total_training_modes["eval"]}
        for name, value in rows.items():
            grid.add_row(f"[bold]{name}[/]: {value}")
        get_console().print(table)
        get_console().print(grid)


def quiet_known_noise() -> None:
    """Hide third-party messages that say nothing about the run, each matched by its exact text and source:
    torch's ``LeafSpec`` deprecation raised inside Lightning, and Lightning's litlogger/litmodels tips."""
    import lightning_utilities.core.rank_zero as rank_zero

    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning, module=r"pytorch_lightning\.utilities\._pytree")
    log = rank_zero.log  # the logger of Lightning's rank_zero_info
    if not any(isinstance(f, _LightningTips) for f in log.filters):
        log.addFilter(_LightningTips())


class _LightningTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger / litmodels" advertisements."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("💡 Tip: ") and ("litlogger" in message or "litmodels" in message))
