"""The ``aegen`` command: fit/validate/test through LightningCLI (``aegen.lightning_cli``), plus the tool
commands (list, evaluate, sample, interpolate, ...).

The CLI only parses, looks names up in the registry and calls the library. This module imports
neither torch nor Lightning at the top, so `aegen --help` and `aegen list` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from aegen import registry
from aegen.errors import AegenError

LIGHTNING_COMMANDS = ("fit", "validate", "test")
DEFAULT_DATA = "digits"


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
    import torch

    with torch.no_grad():
        return torch.cat([model.decode(z.to(model.device)).cpu() for z in codes.split(DECODE_BATCH)])


# ---------------------------------------------------------------------- other commands
def cmd_list(args: argparse.Namespace) -> None:
    for kind, entries in registry.catalogue().items():
        print(f"{kind}:")
        for name, description in entries.items():
            print(f"  {name:<14} {description}")


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
    import torch

    from aegen.checkpoint import load
    from aegen.viz import save_sheet

    model = load(args.checkpoint)
    generator = torch.Generator().manual_seed(args.seed)
    sizes = [min(DECODE_BATCH, args.num - i) for i in range(0, args.num, DECODE_BATCH)]  # bounded memory
    images = torch.cat([model.sample(n, generator=generator).cpu() for n in sizes])
    print(save_sheet(images, args.out))


def cmd_interpolate(args: argparse.Namespace) -> None:
    import torch

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
    import torch

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
    import torch

    from aegen.models.base import GenerativeAE
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
    import torch

    from aegen.latent import encode_all
    from aegen.metrics.controllability import decode_all, different_partners, explore_codes
    from aegen.viz import save_sheet

    _check_sheet(args.num, args.steps, "--num x --steps")
    model, datamodule, dims, images, factors = _factor_images(args)
    k = list(datamodule.factor_names).index(args.factor)
    generator = torch.Generator().manual_seed(args.seed)
    rows = torch.randperm(len(images), generator=generator)[: args.num]
    ends = different_partners(factors[:, k], generator)[rows]
    ends = torch.where(ends >= 0, ends, rows)
    codes = encode_all(model, images, device="cpu")
    path = explore_codes(codes[rows], codes[ends], dims, args.steps)
    print(save_sheet(decode_all(model, path.flatten(0, 1)).unflatten(0, path.shape[:2]), args.out))


def cmd_edit(args: argparse.Namespace) -> None:
    import torch

    from aegen.latent import encode_all
    from aegen.metrics.controllability import decode_all, edit_codes, parse_value
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
    codes = encode_all(model, images, device="cpu")
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
            from aegen.lightning_cli import run_lightning

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
