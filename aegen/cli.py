"""The ``aegen`` command: fit/validate/test through LightningCLI, plus list/evaluate/sample/interpolate.

The CLI only parses, looks names up in the registry and calls the library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.strategies import DDPStrategy

from aegen import registry
from aegen.data.base import AEDataModule
from aegen import training
from aegen.errors import AegenError, DivergenceError
from aegen.io import remove_stale_temporaries
from aegen.models.base import GenerativeAE
from aegen.viz import ImageSheets

LIGHTNING_COMMANDS = ("fit", "validate", "test")
LOGGERS = ("csv", "tensorboard", "wandb")
DEFAULT_DATA = "digits"


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _rewrite_names(argv: list[str]) -> list[str]:
    """``--model NAME`` / ``--data NAME`` -> class paths; ``--trainer.logger csv|tensorboard|wandb`` -> ``--logger``."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in ("--model", "--data", "--model.help", "--data.help", "--trainer.logger") and (eq or i + 1 < len(argv)):
            if not eq:
                i += 1
                value = argv[i]
            seen.add(key)
            if key == "--trainer.logger" and value in LOGGERS:
                out.append(f"--logger={value}")
            elif key == "--trainer.logger" or "." in value or value.startswith("{"):
                out.append(f"{key}={value}")  # a full class path or dict: LightningCLI's own syntax
            else:
                lookup = registry.get_model if key.startswith("--model") else registry.get_data
                out.append(f"{key}={_class_path(lookup(value))}")
        else:
            out.append(arg)
        i += 1
    has_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in argv)
    asks_help = bool({"-h", "--help", "--print_config", "--model.help", "--data.help"} & seen.union(argv))
    if "--model" not in seen and not has_config and not asks_help:
        raise AegenError(f"choose a model with --model NAME, one of: {', '.join(registry.models())}")
    if "--data" not in seen:
        out.insert(0, f"--data={_class_path(registry.get_data(DEFAULT_DATA))}")
    return out


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
    if value is None or value.lower() in ("null", "none"):
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


class AegenCLI(LightningCLI):
    """LightningCLI with aegen's defaults: run directories, checkpoints, image sheets, DDP settings."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--logger", choices=LOGGERS, default="csv",
                            help="metrics loggers: CSV always, plus TensorBoard or wandb (offline without an API key)")
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

    def _loggers(self, kind: str, root: Path, name: str, version: int) -> list[Logger]:
        csv = training.RunCSVLogger(root / "runs", name=name, version=version)
        loggers: list[Logger] = [csv]
        if kind == "tensorboard":
            loggers.append(TensorBoardLogger(root / "runs", name=name, version=f"version_{version}", sub_dir="tensorboard"))
        elif kind == "wandb":
            from pytorch_lightning.loggers import WandbLogger

            offline = not os.environ.get("WANDB_API_KEY") and os.environ.get("WANDB_MODE") != "online"
            loggers.append(WandbLogger(name=f"{name}-version_{version}", project="aegen", offline=offline,
                                       save_dir=str(root / "runs" / name / f"version_{version}")))
        return loggers

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # before Lightning applies the checkpoint's hyperparameters over the flags (_parse_ckpt_path)
        self.resumed_run: Path | None = None
        ckpt = self.config.get(self.config.get("subcommand") or "", {}).get("ckpt_path")
        run = training.run_folder(ckpt) if ckpt and self.config.get("subcommand") == "fit" else None
        if run is not None:
            import yaml

            new = yaml.safe_load(self._parser("fit").dump(self.config["fit"], skip_none=False)) or {}
            changed = training.changed_settings(training.read_config(run / "config.yaml"), new)
            if changed:
                raise AegenError(f"refusing to resume {run} with other settings ({'; '.join(changed[:3])}); only "
                                 "trainer limits such as --trainer.max_epochs may change: start a new run without "
                                 "--ckpt_path instead")
            self.resumed_run = run

    def _run_version(self, root: Path) -> tuple[Path, str, int]:
        """(logger root, run name, version): the resumed run's, or a new version folder reserved now."""
        run = self.resumed_run
        if run is not None:
            remove_stale_temporaries(run / "checkpoints")
            # the folder is this run's own: Lightning's "previous log files will be deleted" does not apply
            warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
            return run.parents[2], run.parent.name, int(run.name.removeprefix("version_"))
        name = f"{self.model.registry_name}-{self.datamodule.registry_name}"
        if training.is_rank_zero():
            version = training.reserve_version(root / "runs" / name)
            if self.subcommand == "fit":
                self.new_run = root / "runs" / name / f"version_{version}"
            return root, name, version
        return root, name, CSVLogger(root / "runs", name=name).version  # unused: only rank 0 writes

    def instantiate_trainer(self, **kwargs: Any):
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = dict(config["trainer"])
        root = Path(trainer.get("default_root_dir") or ".")
        self.new_run: Path | None = None
        self.preempted_checkpoint: Path | None = None
        if trainer.get("logger") in (None, True):
            kwargs.setdefault("logger", self._loggers(config["logger"], *self._run_version(root)))
        if not trainer.get("plugins"):
            kwargs.setdefault("plugins", [training.AtomicCheckpointIO()])
        if trainer.get("strategy", "auto") == "auto" and _num_devices(trainer) > 1:
            # GAN-style phases leave some parameters without gradients in each backward pass
            kwargs.setdefault("strategy", DDPStrategy(find_unused_parameters=True))
        callbacks = [*(trainer.get("callbacks") or []), training.Preemption()]
        if trainer.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(RichProgressBar())
        kwargs.setdefault("callbacks", callbacks)
        built = super().instantiate_trainer(**kwargs)
        if self.resumed_run is not None:  # the run keeps the config.yaml it was started with
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
        trainer_defaults={"log_every_n_steps": 10, "max_epochs": 10},
    )
    if command == "fit":
        log_dir = cli.trainer.log_dir  # a collective under DDP: every rank asks
        path = cli.preempted_checkpoint or next((c.best_model_path for c in cli.trainer.checkpoint_callbacks
                                                 if getattr(c, "filename", None) == LAST_CHECKPOINT), "")
        if cli.trainer.is_global_zero:
            print(f"run: {log_dir}")
            print(f"checkpoint: {path}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Lightning leaves the process group up; gloo's threads alive at interpreter exit abort
        # the process now and then ("terminate called without an active exception", exit -6)
        torch.distributed.destroy_process_group()


# ---------------------------------------------------------------------- argument checks
MAX_SHEET = 10_000  # images in one PNG sheet: larger requests are refused before anything is loaded
DECODE_BATCH = 256  # codes decoded at a time, so that memory does not grow with the sheet


class UsageError(AegenError):
    """A bad command line: argparse's message, as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error`` raises UsageError instead of printing usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        message = re.sub(r"^argument \{[^}]*\}: invalid choice", "unknown command", message)
        raise UsageError(f"{message} (`{self.prog} --help` lists the options)")


def _int_arg(minimum: int = 1, maximum: int | None = None, why: str = ""):
    """An argparse ``type``: an integer in [minimum, maximum]; the error says which and what was given."""
    if maximum is not None:
        wanted = f"an integer from {minimum} to {maximum:,}{why}"
    else:
        wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer of at least {minimum}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


POSITIVE, STEPS = _int_arg(1), _int_arg(2, MAX_SHEET)
SHEET_SIDE = _int_arg(1, MAX_SHEET)  # rows of a sheet
SEED = _int_arg(0, 2**32 - 1)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _strength_range(text: str) -> tuple[float, float]:
    """``LOW,HIGH``: two finite numbers."""
    parts = text.split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LOW,HIGH (two numbers, e.g. -3,3), got {text!r}") from None
    if not all(abs(v) < float("inf") for v in (low, high)):
        raise argparse.ArgumentTypeError(f"must be two finite numbers LOW,HIGH, got {text!r}")
    return low, high


def _blocking_file(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is a file (so nothing can be written under it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _out_path(kind: str):
    """An argparse ``type`` for --out: an image file ('image'), a checkpoint file ('file') or a directory ('dir')."""

    def parse(text: str) -> str:
        path = Path(text)
        blocking = _blocking_file(path)
        if blocking is not None:
            raise argparse.ArgumentTypeError(f"cannot write {text}: {blocking} is a file, not a directory; "
                                             "choose another path")
        if kind == "dir" and path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file; give a directory for the outputs")
        if kind != "dir" and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name inside it")
        if kind == "image":
            from PIL import Image

            Image.init()
            known = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
            if path.suffix.lower() not in known:
                raise argparse.ArgumentTypeError(f"{text} is not an image file name; end it in .png")
        return text

    parse.__name__ = "path"
    return parse


def _check_sheet(rows: int, cols: int, flags: str) -> None:
    """Refuse a sheet of more than MAX_SHEET images before any work is done."""
    if rows * cols > MAX_SHEET:
        raise AegenError(f"{flags} ask for a sheet of {rows * cols:,} images; aegen writes at most {MAX_SHEET:,} "
                         "in one sheet: lower them")


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    """Decode codes (N, D) in batches of DECODE_BATCH; images on the CPU."""
    with torch.no_grad():
        return torch.cat([model.decode(z.to(model.device)).cpu() for z in codes.split(DECODE_BATCH)])


# ---------------------------------------------------------------------- other commands
def cmd_list(args: argparse.Namespace) -> None:
    print("models:")
    for name, cls in registry.models().items():
        print(f"  {name:<14} {registry.describe(cls)}")
    print("datasets:")
    for name, cls in registry.datasets().items():
        print(f"  {name:<14} {registry.describe(cls)}")


def _data_options(name: str | None, checkpoint: str, argv: list[str]) -> dict[str, Any]:
    """``--data.x VALUE`` flags typed by the datamodule's signature (only the flags given)."""
    if not argv:
        return {}
    from jsonargparse import ArgumentParser

    from aegen.checkpoint import read_checkpoint

    if name is None:
        record = read_checkpoint(checkpoint)["aegen"].get("data") or {}
        name = record.get("name") or DEFAULT_DATA
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(registry.get_data(name), "data")
    given = {a.split("=", 1)[0].removeprefix("--data.") for a in argv if a.startswith("--data.")}
    parsed = parser.parse_args(argv).data
    return {k: getattr(parsed, k) for k in given}


def _pop_data_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--data.x VALUE`` / ``--data.x=VALUE`` flags from the other arguments."""
    rest, data = [], []
    i = 0
    while i < len(argv):
        if argv[i].startswith("--data.") and "=" not in argv[i] and i + 1 < len(argv):
            data += argv[i : i + 2]
            i += 1
        elif argv[i].startswith("--data."):
            data.append(argv[i])
        else:
            rest.append(argv[i])
        i += 1
    return rest, data


def cmd_evaluate(args: argparse.Namespace) -> None:
    from aegen.evaluate import evaluate

    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent.parent / "eval"
    metrics = evaluate(
        args.checkpoint, out, metrics=args.metrics, num_samples=args.num_samples, seeds=args.seeds, seed=args.seed,
        inception_weights=args.inception_weights, data=args.data,
        data_options=_data_options(args.data, args.checkpoint, getattr(args, "data_args", [])),
        interp_samples=args.interp_samples, num_reference=args.num_reference,
        disentangle_points=args.disentangle_points, device=args.device,
    )
    print(json.dumps(metrics, indent=2))


def cmd_sample(args: argparse.Namespace) -> None:
    from aegen.checkpoint import load
    from aegen.viz import save_sheet

    model = load(args.checkpoint)
    generator = torch.Generator().manual_seed(args.seed)
    sizes = [min(DECODE_BATCH, args.num - i) for i in range(0, args.num, DECODE_BATCH)]  # bounded memory
    images = torch.cat([model.sample(n, generator=generator).cpu() for n in sizes])
    print(save_sheet(images, args.out))


def cmd_interpolate(args: argparse.Namespace) -> None:
    from aegen.checkpoint import load, load_datamodule
    from aegen.latent import encode_all, neighbour_path, path_codes
    from aegen.viz import save_sheet

    _check_sheet(args.pairs, args.steps, "--pairs x --steps")
    model = load(args.checkpoint)
    images, _ = load_datamodule(args.checkpoint).tensors(args.split, args.bank)
    if len(images) < 2:
        raise AegenError(f"--split {args.split} has {len(images)} image(s); an interpolation needs 2: "
                         "use another --split")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[: 2 * args.pairs]
    starts, ends = pick[: len(pick) // 2], pick[len(pick) // 2 :]
    if args.path == "neighbours":
        codes = encode_all(model, images)
        rows = [path_codes(codes, neighbour_path(codes, int(a), int(b), args.k), args.steps) for a, b in zip(starts, ends)]
        sheet = _decode(model, torch.stack(rows).flatten(0, 1)).unflatten(0, (len(rows), args.steps))
    else:
        per = max(1, DECODE_BATCH // args.steps)  # pairs decoded at a time
        sheet = torch.cat([model.interpolate(images[a], images[b], args.steps, spherical=args.path == "spherical").cpu()
                           for a, b in zip(starts.split(per), ends.split(per))])
    print(save_sheet(sheet, args.out))


def cmd_attribute(args: argparse.Namespace) -> None:
    from aegen.checkpoint import load, load_datamodule
    from aegen.latent import attribute_table, attribute_vectors, encode_all
    from aegen.viz import save_sheet

    _check_sheet(args.num, args.steps, "--num x --steps")
    model = load(args.checkpoint)
    datamodule = load_datamodule(args.checkpoint)
    images, labels = datamodule.tensors("train", args.bank)
    names, table = attribute_table(datamodule, labels)
    if args.attr not in names:
        shown = ", ".join(names[:50]) + (", …" if len(names) > 50 else "")
        raise AegenError(f"unknown attribute {args.attr!r} for {datamodule.registry_name}; choose one of: {shown}")
    vector = attribute_vectors(encode_all(model, images), table.to(model.device))[names.index(args.attr)]
    low, high = args.strengths
    strengths = torch.linspace(low, high, args.steps, device=model.device)
    x = datamodule.tensors("test", args.num)[0]
    codes = encode_all(model, x).unsqueeze(1) + strengths.view(1, -1, 1) * vector
    sheet = _decode(model, codes.flatten(0, 1)).unflatten(0, (len(x), args.steps))
    print(save_sheet(sheet, args.out))


def cmd_traverse(args: argparse.Namespace) -> None:
    from aegen.checkpoint import load, load_datamodule
    from aegen.viz import save_sheet

    model = load(args.checkpoint)
    if type(model).traversal is GenerativeAE.traversal:  # one row per code dimension (models may override)
        if args.code is not None and args.code >= model.latent_dim:
            raise AegenError(f"--code {args.code} does not exist: the model has code dimensions "
                             f"0 to {model.latent_dim - 1}")
        _check_sheet(1 if args.code is not None else model.latent_dim, args.steps, "the code dimensions x --steps")
    x = None
    if args.image is not None:
        images, _ = load_datamodule(args.checkpoint).tensors(args.split)
        if not 0 <= args.image < len(images):
            raise AegenError(f"no {args.split} image {args.image}: choose --image between 0 and {len(images) - 1}")
        x = images[args.image : args.image + 1]
    sheet = model.traversal(x, steps=args.steps, span=args.span, code=args.code,
                            generator=torch.Generator().manual_seed(args.seed))
    print(save_sheet(sheet, args.out))


def _factor_images(args: argparse.Namespace):
    """The model, datamodule, factor blocks and (images, factors) of ``--split`` for explore/edit."""
    from aegen.checkpoint import load, load_datamodule
    from aegen.metrics.controllability import factor_blocks

    model = load(args.checkpoint)
    datamodule = load_datamodule(args.checkpoint)
    names = list(datamodule.factor_names or [])
    if args.factor not in names:
        raise AegenError(f"unknown factor {args.factor!r}; {datamodule.registry_name} has: {', '.join(names) or 'no factors'}")
    blocks = factor_blocks(model, datamodule)
    if args.factor not in blocks:
        raise AegenError(f"the model has no block for {args.factor}; its blocks are {', '.join(blocks)}")
    images, factors = datamodule.tensors(args.split)
    return model, datamodule, blocks[args.factor], images, factors


def cmd_explore(args: argparse.Namespace) -> None:
    from aegen.metrics.controllability import decode_all, different_partners, encode_all, explore_codes
    from aegen.viz import save_sheet

    _check_sheet(args.num, args.steps, "--num x --steps")
    model, datamodule, dims, images, factors = _factor_images(args)
    k = list(datamodule.factor_names).index(args.factor)
    generator = torch.Generator().manual_seed(args.seed)
    rows = torch.randperm(len(images), generator=generator)[: args.num]
    ends = different_partners(factors[:, k], generator)[rows]
    ends = torch.where(ends >= 0, ends, rows)
    codes = encode_all(model, images)
    path = explore_codes(codes[rows], codes[ends], dims, args.steps)
    print(save_sheet(decode_all(model, path.flatten(0, 1)).unflatten(0, path.shape[:2]), args.out))


def cmd_edit(args: argparse.Namespace) -> None:
    from aegen.metrics.controllability import decode_all, edit_codes, encode_all, parse_value
    from aegen.viz import save_sheet

    _check_sheet(args.num, 3, "--num (3 images a row)")
    model, datamodule, dims, images, factors = _factor_images(args)
    k = list(datamodule.factor_names).index(args.factor)
    value = parse_value(datamodule, args.factor, args.value)
    generator = torch.Generator().manual_seed(args.seed)
    having = (factors[:, k] == value).nonzero().flatten()
    if len(having) == 0:
        raise AegenError(f"no {args.split} image has {args.factor} = {args.value}; try another --split or value")
    source = having[torch.randint(len(having), (1,), generator=generator)]
    rows = torch.randperm(len(images), generator=generator)[: args.num]
    codes = encode_all(model, images)
    edited = decode_all(model, edit_codes(codes[rows], codes[source].expand(len(rows), -1), dims))
    sheet = torch.stack([images[source].expand(len(rows), -1, -1, -1), images[rows], edited], dim=1)
    print(save_sheet(sheet, args.out))


def cmd_prior(args: argparse.Namespace) -> None:
    from aegen.models.learned_prior import fit_prior

    gan = {"gan_loss": args.gan_loss, "gaussian_start": args.gan_loss == "mmd"} if args.kind == "gan" else {}
    fit_prior(args.checkpoint, args.out, kind=args.kind, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
              gmm_components=args.components, **gan)
    print(f"checkpoint: {args.out}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aegen",
        description="aegen: generative autoencoders. `aegen fit --model NAME [--data NAME]` trains "
        "(see `aegen fit --help`); `aegen list` shows the models and datasets.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="{fit,validate,test,list,evaluate,sample,interpolate,traverse,attribute,explore,edit,prior}")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"{name} a model (LightningCLI; `aegen {name} --help`)", add_help=False)
    sub.add_parser("list", help="models and datasets, one line each").set_defaults(func=cmd_list)

    p = sub.add_parser("evaluate", help="metrics of a checkpoint -> DIR/metrics.json and DIR/report.md",
                       description="Metrics of a checkpoint -> DIR/metrics.json, DIR/report.md and image sheets. "
                       "--data NAME and --data.x VALUE evaluate on another dataset or with other data settings.")
    p.add_argument("checkpoint")
    p.add_argument("--out", type=_out_path("dir"), help="output directory (default: <run>/eval)")
    p.add_argument("--metrics", help="comma-separated groups: fid,is,kid,pr (Inception), judge, cluster, disentangle, "
                   "recon, interp (default: every group that applies and needs no external weights)")
    p.add_argument("--num-samples", type=_int_arg(2), default=50_000, help="generated images for sample quality (default 50000)")
    p.add_argument("--interp-samples", type=_int_arg(2), default=10_000, help="decoded midpoints for interp_fid_judge")
    p.add_argument("--num-reference", type=POSITIVE, help="reference images from the training split (default: all)")
    p.add_argument("--disentangle-points", type=_int_arg(2), default=10_000,
                   help="training points of the disentanglement metrics, test points half (disentanglement_lib: 10000)")
    p.add_argument("--seeds", type=POSITIVE, default=1, help="repeat sampling-based metrics over this many seeds")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--inception-weights", help="torch-fidelity's Inception weights file "
                   "(else $AEGEN_INCEPTION_WEIGHTS, else torch hub's checkpoint cache)")
    p.add_argument("--data", help="evaluate on this dataset instead of the checkpoint's")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="a PNG sheet of generated images",
                       description=f"A PNG sheet of generated images, decoded {DECODE_BATCH} at a time. A sheet holds "
                       f"at most {MAX_SHEET:,} images: a larger --num is refused.")
    p.add_argument("checkpoint")
    p.add_argument("--num", type=_int_arg(1, MAX_SHEET, " (the most images in one sheet)"), default=64,
                   help=f"images in the sheet, 1 to {MAX_SHEET:,} (default 64)")
    p.add_argument("--out", type=_out_path("image"), default="samples.png")
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="a PNG sheet of interpolations between test images")
    p.add_argument("checkpoint")
    p.add_argument("--out", type=_out_path("image"), default="interpolations.png")
    p.add_argument("--pairs", type=SHEET_SIDE, default=8, help="rows: pairs of images (default 8)")
    p.add_argument("--steps", type=STEPS, default=10,
                   help=f"columns: images along each path, at least 2 (default 10; a sheet holds at most {MAX_SHEET:,})")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--path", default="linear", choices=("linear", "spherical", "neighbours"),
                   help="straight line, great circle, or the shortest path through the k-nearest-neighbour "
                        "graph of the split's codes (GAIA's Figure 0)")
    p.add_argument("--k", type=POSITIVE, default=10, help="neighbours per code for --path neighbours")
    p.add_argument("--bank", type=_int_arg(2), default=2000, help="images of --split to draw pairs (and paths) from")
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("attribute", help="a PNG sheet of attribute vectors added to test images "
                       "(rows: images, columns: strengths)")
    p.add_argument("checkpoint")
    p.add_argument("--attr", required=True,
                   help="a named attribute (CelebA: Smiling, Male, …), a factor value (fonts: letter=3) or a class (class=3)")
    p.add_argument("--strengths", type=_strength_range, default="-3,3",
                   help="LOW,HIGH multiples of the attribute vector")
    p.add_argument("--steps", type=STEPS, default=7, help="columns: strengths from LOW to HIGH, at least 2")
    p.add_argument("--num", type=SHEET_SIDE, default=8, help="test images, one per row")
    p.add_argument("--bank", type=_int_arg(2), default=10000, help="training images the vectors are regressed on")
    p.add_argument("--out", type=_out_path("image"), default="attribute.png")
    p.set_defaults(func=cmd_attribute)

    p = sub.add_parser("traverse", help="a PNG sheet of latent traversals (one row per code dimension, "
                       "or per category for LatentGAN)")
    p.add_argument("checkpoint")
    p.add_argument("--out", type=_out_path("image"), default="traversal.png")
    p.add_argument("--steps", type=STEPS, default=10, help="columns: values of the swept code, at least 2")
    p.add_argument("--span", type=_positive_float, default=None,
                   help="sweep range: ±span std of the codes (default 2); LatentGAN: ±span of its "
                        "continuous code (default 1.5, the paper's figures)")
    p.add_argument("--code", type=_int_arg(0), default=None,
                   help="sweep only this code dimension (LatentGAN: which continuous code, default 0)")
    p.add_argument("--image", type=_int_arg(0), default=None,
                   help="traverse around the code of this image of --split (default: the mean code)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=cmd_traverse)

    p = sub.add_parser("prior", help="fit a learned prior (latent GAN or Gaussian mixture) to a trained model's codes "
                       "-> a new checkpoint whose samples use it")
    p.add_argument("checkpoint")
    p.add_argument("--out", type=_out_path("file"), required=True, help="the new checkpoint (.ckpt)")
    p.add_argument("--kind", default="gan", choices=("gan", "gmm"),
                   help="gan: a code generator trained adversarially on the codes, decoder frozen; gmm: a Gaussian mixture")
    p.add_argument("--steps", type=POSITIVE, default=2000, help="gan: latent-GAN updates (one D and one G step each)")
    p.add_argument("--batch-size", type=POSITIVE, default=128)
    p.add_argument("--components", type=POSITIVE, default=10, help="gmm: mixture components")
    p.add_argument("--gan-loss", default="mmd", choices=("mmd", "standard"),
                   help="gan: the code generator's loss; mmd (default): match D's features of the codes with a "
                   "kernel MMD, starting from the codes' Gaussian; standard: a plain MLP generator with the non-saturating GAN "
                   "loss (the LatentGAN paper's)")
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=cmd_prior)
    p = sub.add_parser("explore", help="a PNG sheet exploring one factor's code block (rows: test images, "
                       "columns: steps from the image's block to another image's)")
    p.add_argument("checkpoint")
    p.add_argument("--factor", required=True, help="a factor of the data, e.g. background_colour")
    p.add_argument("--out", type=_out_path("image"), default="explore.png")
    p.add_argument("--num", type=SHEET_SIDE, default=8, help="images, one per row")
    p.add_argument("--steps", type=STEPS, default=8, help="columns, at least 2")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("edit", help="a PNG sheet setting one factor of test images to the value of an image "
                       "that has it (columns: that image, the original, the edit)")
    p.add_argument("checkpoint")
    p.add_argument("--factor", required=True, help="a factor of the data, e.g. font_colour")
    p.add_argument("--value", required=True, help="the value: an index, or a name where the data names them (fonts: white)")
    p.add_argument("--out", type=_out_path("image"), default="edit.png")
    p.add_argument("--num", type=SHEET_SIDE, default=8, help="images, one per row")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=cmd_edit)
    return parser


_JSONARGPARSE_NOISE = ("Does not validate", "Subtypes:", "Errors:", "Given value", "Problem with given class_path",
                       "Expected a <class 'NoneType'>", "- Expected a <class 'NoneType'>")


def _one_line(err: BaseException) -> str:
    """The message of an exception on one line; jsonargparse's nested Union reports are reduced to their cause."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if isinstance(err, AegenError):
        return " ".join(lines)
    keys = re.findall(r'Parser key "([^"]+)"', str(err))
    detail = [ln.lstrip("- ") for ln in lines if not ln.lstrip("- ").startswith(_JSONARGPARSE_NOISE) and "Parser key" not in ln]
    message = detail[0] if detail else (lines[0] if lines else type(err).__name__)
    if keys:
        return f"invalid --{'.'.join(keys)}: {message} (`aegen fit --model.help NAME` lists a model's options)"
    return message if isinstance(err, (ValueError, argparse.ArgumentError)) else f"{type(err).__name__}: {message}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("AEGEN_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            run_lightning(argv)
        else:
            # values such as "-3,3" would read as options to argparse: glue them to their flag
            argv = [f"{a}={argv[i + 1]}" if a == "--strengths" and i + 1 < len(argv) else a
                    for i, a in enumerate(argv) if i == 0 or argv[i - 1] != "--strengths"]
            data_args: list[str] = []
            if argv and argv[0] == "evaluate":
                argv, data_args = _pop_data_options(argv)
            args = _parser().parse_args(argv)
            args.data_args = data_args
            if not getattr(args, "func", None):
                _parser().print_help()
                return 2
            args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's contract: one line, non-zero exit
        if debug:
            raise
        # user errors (bad flags, files, checkpoints) exit 2; anything else is aegen's own fault: 1
        expected = (AegenError, ValueError, argparse.ArgumentError, FileNotFoundError, NotADirectoryError,
                    IsADirectoryError, PermissionError)
        hint = "" if isinstance(err, expected) else " (--debug or AEGEN_DEBUG=1 shows the traceback)"
        print(f"aegen: error: {_one_line(err)}{hint}", file=sys.stderr)
        return 2 if isinstance(err, expected) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
