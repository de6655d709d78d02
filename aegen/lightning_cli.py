"""``aegen fit|validate|test``: LightningCLI with aegen's run folders, resume, checkpoints and sheets.

Imported only by the commands that train, so the other commands start without Lightning.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, RichModelSummary
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.strategies import DDPStrategy

from aegen import console, presets, registry, training
from aegen.cli import DEFAULT_DATA, DEFAULT_EPOCHS, LIGHTNING_COMMANDS
from aegen.data.base import AEDataModule
from aegen.errors import AegenError, DivergenceError
from aegen.io import remove_stale_temporaries
from aegen.models.base import GenerativeAE
from aegen.viz import ImageSheets

LoggerName = Literal["csv", "tensorboard", "wandb"]
LOGGERS = get_args(LoggerName)


class Trainer(pl.Trainer):
    """Lightning's Trainer whose ``logger`` also takes aegen's names, so ``trainer: {logger: tensorboard}``
    works in a config file as ``--logger tensorboard`` does (AegenCLI builds those loggers)."""

    def __init__(self, logger: Logger | Iterable[Logger] | bool | LoggerName | None = None, **kwargs: Any) -> None:
        """
        Args:
            logger: a name (csv, tensorboard, wandb: aegen's loggers, as ``--logger``), Lightning logger(s), or
                None/True (aegen's loggers chosen by ``--logger``); False disables logging.
        """
        super().__init__(logger=logger, **kwargs)


@dataclass
class WandbOptions:
    """Settings of the wandb run that ``--logger wandb`` starts.

    Args:
        project: wandb project of the run.
        entity: wandb user or team that owns the project (None: the account's default).
        tags: tags of the run.
        log_model: upload checkpoints as wandb artifacts: False, True (at the end of training) or "all"
            (every checkpoint as it is saved); needs an online run (WANDB_API_KEY set).
    """

    project: str = "aegen"
    entity: str | None = None
    tags: list[str] | None = None
    log_model: bool | Literal["all"] = False


def class_path(cls: type) -> str:
    """``module.QualifiedName`` of a class, as LightningCLI's ``--model`` takes it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _rewrite_names(argv: list[str]) -> list[str]:
    """``--model NAME`` / ``--data NAME`` -> class paths; ``--preset NAME`` -> the preset's config file,
    read right after the model (the data's class path before it); ``--trainer.logger
    csv|tensorboard|wandb`` -> ``--logger``."""
    out: list[str] = []
    seen: dict[str, str] = {}
    data_at, model_at = -1, -1
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        names = ("--model", "--data", "--model.help", "--data.help", "--trainer.logger", "--preset")
        if key in names and (eq or i + 1 < len(argv)):
            if not eq:
                i += 1
                value = argv[i]
            seen[key] = value
            if key == "--preset":
                pass  # placed after the model below
            elif key == "--trainer.logger" and value in LOGGERS:
                out.append(f"--logger={value}")
            elif key == "--trainer.logger" or "." in value or value.startswith("{"):
                out.append(f"{key}={value}")  # a full class path or dict: LightningCLI's own syntax
            else:
                lookup = registry.get_model if key.startswith("--model") else registry.get_data
                out.append(f"{key}={class_path(lookup(value))}")
            data_at = len(out) - 1 if key == "--data" else data_at
            model_at = len(out) - 1 if key == "--model" else model_at
        else:
            out.append(arg)
        i += 1
    has_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in argv)
    asks_help = bool({"-h", "--help", "--print_config", "--model.help", "--data.help"} & set(seen).union(argv))
    if "--model" not in seen and not has_config and not asks_help:
        raise AegenError(f"choose a model with --model NAME, one of: {', '.join(registry.models())}")
    if "--preset" in seen:
        out = _with_preset(out, seen, data_at, model_at)
    elif "--data" not in seen:
        out.insert(0, f"--data={class_path(registry.get_data(DEFAULT_DATA))}")
    return out


def _with_preset(out: list[str], seen: dict[str, str], data_at: int, model_at: int) -> list[str]:
    """Insert ``--config=PRESET_FILE`` after the model's class path, with the data's before both."""
    if model_at < 0:
        raise AegenError("--preset needs --model NAME: a preset belongs to a model (`aegen list --presets`)")
    model = seen["--model"]
    if "." in model:  # a class path: the registered model it names
        model = next((n for n, cls in registry.models().items() if class_path(cls) == model), model)
    file = presets.path(model, seen["--preset"])
    data = out.pop(data_at) if data_at >= 0 else f"--data={class_path(registry.get_data(DEFAULT_DATA))}"
    if data_at >= 0 and data_at < model_at:
        model_at -= 1
    rest = [a for j, a in enumerate(out) if j != model_at]
    head = [data, out[model_at], *([f"--config={file}"] if file is not None else [])]
    return [*head, *rest]


def _flag(argv: list[str], name: str) -> tuple[int, str | None]:
    """Index and value of ``--name VALUE`` / ``--name=VALUE`` in argv ((-1, None) when absent)."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return i, argv[i + 1]
        if arg.startswith(f"{name}="):
            return i, arg.partition("=")[2]
    return -1, None


def _resume_args(argv: list[str]) -> list[str]:
    """Resolve ``--ckpt_path`` (``last``, a run folder or a file) to a checkpoint file.

    Without ``--model`` or ``--config``, the checkpoint's run supplies its own config.yaml, so
    ``aegen fit --ckpt_path runs/gaia-digits/version_0`` continues that run as it was set up.
    """
    i, value = _flag(argv, "--ckpt_path")
    if value is None or value.lower() in ("null", "none", "hpc"):  # hpc: Lightning's SLURM checkpoint
        return argv
    width = 2 if argv[i] == "--ckpt_path" else 1
    root = Path(_flag(argv, "--trainer.default_root_dir")[1] or ".")
    model, data = _flag(argv, "--model")[1], _flag(argv, "--data")[1] or DEFAULT_DATA
    name = f"{model}-{data}" if model and "." not in model and "." not in data else None
    path = training.resolve_resume(value, root, name)
    rest = argv[:i] + argv[i + width:]
    if path is None:
        print(f"aegen: nothing to resume under {root / 'runs' / (name or '*')}; starting a new run", file=sys.stderr)
        return rest
    has_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in argv)
    run = training.run_folder(path)
    if model is None and not has_config:
        if run is None:
            raise AegenError(f"{path} is not inside a run folder with its config.yaml; add --model NAME (and the "
                             "options it was trained with) to continue from it")
        rest = ["--config", str(run / "config.yaml"), *rest]
    return [*rest, f"--ckpt_path={path}"]


def _num_devices(trainer: dict[str, Any]) -> int:
    devices, accelerator = trainer.get("devices", "auto"), trainer.get("accelerator", "auto")
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif str(devices) in ("auto", "-1"):
        gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        count = torch.cuda.device_count() if gpu else 1
    else:
        count = int(devices)
    return count * int(trainer.get("num_nodes") or 1)


LAST_CHECKPOINT = "last"  # runs/<model>-<data>/version_N/checkpoints/last.ckpt: the latest epoch's weights
EVAL_FOLDER = "eval"  # validate/test --ckpt_path CKPT log into <run>/eval/<validate|test>/ of CKPT's run


class AegenCLI(LightningCLI):
    """LightningCLI with aegen's defaults: run directories, checkpoints, image sheets, DDP settings."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--logger", choices=LOGGERS, default="csv",
                            help="metrics loggers: CSV always, plus TensorBoard or wandb (offline without an API key)")
        parser.add_class_arguments(WandbOptions, "wandb")
        parser.link_arguments("data.img_shape", "model.init_args.img_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        # two checkpoints per run: the best by val/loss, and last.ckpt after every epoch (since
        # Lightning 2.5, ModelCheckpoint(save_last=True) rewrites last.ckpt only with a new best)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val/loss",
            "checkpoint.mode": "min",
            "checkpoint.filename": "best-epoch{epoch:03d}-step{step}",
            "checkpoint.auto_insert_metric_name": False,
            "last_checkpoint.filename": LAST_CHECKPOINT,
            "last_checkpoint.enable_version_counter": False,
        })
        parser.add_lightning_class_args(ImageSheets, "images")
        try:  # checkpoints are untrusted input: --ckpt_path loads tensors and plain types only
            parser.set_defaults({"weights_only": True})
        except KeyError:  # Lightning before 2.4 has no weights_only argument
            pass

    def _loggers(self, kind: str, wandb: WandbOptions, parent: Path, name: str, version: str) -> list[Logger]:
        """Loggers writing into ``parent/name/version``."""
        csv = training.RunCSVLogger(parent, name=name, version=version)
        loggers: list[Logger] = [csv]
        if kind == "tensorboard":
            loggers.append(TensorBoardLogger(parent, name=name, version=version, sub_dir="tensorboard",
                                             default_hp_metric=False))
        elif kind == "wandb":
            from pytorch_lightning.loggers import WandbLogger

            run = parent / name / version
            offline = not os.environ.get("WANDB_API_KEY") and os.environ.get("WANDB_MODE") != "online"
            title = "-".join(run.parts[-4:] if name == EVAL_FOLDER else run.parts[-2:])
            loggers.append(WandbLogger(name=title, project=wandb.project, entity=wandb.entity,
                                       tags=wandb.tags, log_model=wandb.log_model, offline=offline, save_dir=str(run)))
        return loggers

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # before Lightning applies the checkpoint's hyperparameters over the flags (_parse_ckpt_path)
        self.resumed_run: Path | None = None
        subcommand = self.config.get("subcommand")
        ckpt = self.config.get(subcommand or "", {}).get("ckpt_path")
        run = training.run_folder(ckpt) if ckpt else None
        self.evaluated_run = run if subcommand in ("validate", "test") else None
        run = run if subcommand == "fit" else None
        if run is not None:
            import yaml

            new = yaml.safe_load(self._parser("fit").dump(self.config["fit"], skip_none=False)) or {}
            changed = training.changed_settings(training.read_config(run / "config.yaml"), new)
            if changed:
                raise AegenError(f"refusing to resume {run} with other settings ({'; '.join(changed[:3])}); only "
                                 "trainer limits such as --trainer.max_epochs may change: start a new run without "
                                 "--ckpt_path instead")
            self.resumed_run = run

    def _run_version(self, root: Path) -> tuple[Path, str, str]:
        """(logger parent, name, version): the resumed run's, ``<run>/eval/<validate|test>`` of the checkpoint's
        run for validate/test, or a new version folder reserved now."""
        run = self.resumed_run
        if run is not None or self.evaluated_run is not None:
            # the folder is this run's own: Lightning's "previous log files will be deleted" does not apply
            warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
        if run is not None:
            remove_stale_temporaries(run / "checkpoints")
            return run.parents[1], run.parent.name, run.name
        if self.evaluated_run is not None:
            return self.evaluated_run, EVAL_FOLDER, str(self.subcommand)
        name = f"{self.model.registry_name}-{self.datamodule.registry_name}"
        if training.is_rank_zero():
            version = f"version_{training.reserve_version(root / 'runs' / name)}"
            if self.subcommand == "fit":
                self.new_run = root / "runs" / name / version
            return root / "runs", name, version
        return root / "runs", name, f"version_{CSVLogger(root / 'runs', name=name).version}"  # only rank 0 writes

    def instantiate_trainer(self, **kwargs: Any):
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = dict(config["trainer"])
        root = Path(trainer.get("default_root_dir") or ".")
        self.new_run: Path | None = None
        self.preempted_checkpoint: Path | None = None
        logger = trainer.get("logger")
        if logger in (None, True, *LOGGERS):  # a name in trainer.logger (a config file's) outranks --logger
            kind = logger if isinstance(logger, str) else config["logger"]
            kwargs.setdefault("logger", self._loggers(kind, config["wandb"], *self._run_version(root)))
        if not trainer.get("plugins"):
            kwargs.setdefault("plugins", [training.AtomicCheckpointIO()])
        if trainer.get("strategy", "auto") == "auto" and _num_devices(trainer) > 1:
            # GAN-style phases leave some parameters without gradients in each backward pass
            kwargs.setdefault("strategy", DDPStrategy(find_unused_parameters=True))
        callbacks = [*(trainer.get("callbacks") or []), training.Preemption()]
        if trainer.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            # a log file (SLURM, `| tee`) gets one plain line per epoch instead of a redrawn bar
            callbacks.append(console.LossBar() if sys.stdout.isatty() else console.EpochLines())
        kwargs.setdefault("callbacks", callbacks)
        built = super().instantiate_trainer(**kwargs)
        built.callbacks = [console.ModelTable(c._max_depth, **c._summarize_kwargs) if type(c) is RichModelSummary else c
                           for c in built.callbacks]  # Lightning's default summary, without "Total FLOPs: 0"
        if self.resumed_run is not None or self.evaluated_run is not None:  # the run keeps its config.yaml
            for callback in built.callbacks:
                if isinstance(callback, SaveConfigCallback):
                    callback.already_saved = True
        return built

    def _run_subcommand(self, subcommand: str) -> None:
        """Run fit/validate/test; a fit that stops leaves a resumable checkpoint or no run folder at all."""
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        try:
            super()._run_subcommand(subcommand)
        except SIGTERMException:
            saved = next((c.saved for c in self.trainer.callbacks if isinstance(c, training.Preemption)), None)
            if self.trainer.is_global_zero:
                run = self.trainer.log_dir
                where = f"saved {saved}; resume with `aegen fit --ckpt_path {run}`" if saved else "no checkpoint saved"
                print(f"aegen: stopped by a signal at epoch {self.trainer.current_epoch}, step "
                      f"{self.trainer.global_step}; {where}", file=sys.stderr)
            self.preempted_checkpoint = saved
        except BaseException as err:
            self._after_failure(err)
            raise

    def _after_failure(self, err: BaseException) -> None:
        """Name the last good checkpoint of a diverged run; remove a new run folder holding no checkpoint."""
        run = self.resumed_run or self.new_run
        if run is None or not self.trainer.is_global_zero:
            return
        good = sorted((run / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        if good:
            note = f"last good checkpoint: {good[-1]}"
        elif self.new_run is not None:
            shutil.rmtree(self.new_run, ignore_errors=True)
            note = f"no checkpoint had been written, so {self.new_run} was removed"
        else:
            note = "no checkpoint in the run"
        if isinstance(err, DivergenceError):
            err.args = (f"{err}; training stopped, {note}; try a lower --model.lr or set --model.grad_clip",)


def run_lightning(argv: list[str]) -> None:
    import aegen.metrics.callbacks  # noqa: F401  (its callbacks by short name: --trainer.callbacks+=SampleQuality)

    command, rest = argv[0], argv[1:]
    if command == "fit":
        rest = _resume_args(rest)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    console.quiet_known_noise()
    no_exit = {"exit_on_error": False}
    cli = AegenCLI(
        GenerativeAE,
        AEDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=[command, *_rewrite_names(rest)],
        parser_kwargs={**no_exit, **{c: dict(no_exit) for c in LIGHTNING_COMMANDS}},
        save_config_kwargs={"overwrite": False},
        auto_configure_optimizers=False,
        seed_everything_default=0,
        trainer_class=Trainer,
        trainer_defaults={"log_every_n_steps": 10, "max_epochs": DEFAULT_EPOCHS},
    )
    if command == "fit":
        log_dir = cli.trainer.log_dir  # a collective under DDP: every rank asks
        path = cli.preempted_checkpoint or next((c.best_model_path for c in cli.trainer.checkpoint_callbacks
                                                 if getattr(c, "filename", None) == LAST_CHECKPOINT), "")
        best = next((c for c in cli.trainer.checkpoint_callbacks if getattr(c, "monitor", None) == "val/loss"), None)
        if cli.trainer.is_global_zero:
            if best is not None and best.best_model_score is not None:
                print(f"best val/loss {float(best.best_model_score):.4g}: {best.best_model_path}")
            print(f"run: {log_dir}")
            print(f"checkpoint: {path}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Lightning leaves the process group up; gloo's threads alive at interpreter exit abort
        # the process now and then ("terminate called without an active exception", exit -6)
        torch.distributed.destroy_process_group()


# ---------------------------------------------------------------------- argument checks
