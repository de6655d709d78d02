"""The tool commands of ``aegen`` (sample, interpolate, traverse, attribute, explore, edit, prior, export,
predict, list), each a typed function: ``aegen.cli`` builds its options, defaults and help from the signature and
docstring (jsonargparse), the types of ``aegen.argtypes`` check every value. Each imports torch
when called, not before. The sheet commands return the path of the PNG they wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aegen import registry
from aegen.argtypes import MAX_SHEET, AtLeast2, Count, ImageFile, Index, OutputFile, PositiveNumber, Range, Seed
from aegen.argtypes import OutputDir, SheetSide, SheetSize, Steps
from aegen.errors import AegenError
from aegen.landmarks import LandmarkAttribute

DECODE_BATCH = 256  # codes decoded at a time, so that memory does not grow with the sheet

Split = Literal["train", "val", "test"]


def _check_sheet(rows: int, cols: int, flags: str) -> None:
    """Refuse a sheet of more than MAX_SHEET images before any work is done."""
    if rows * cols > MAX_SHEET:
        raise AegenError(f"{flags} ask for a sheet of {rows * cols:,} images; aegen writes at most {MAX_SHEET:,} "
                         "in one sheet: lower them")


def sheet_path(checkpoint: Path, out: str | None, command: str) -> Path:
    """Where a sheet command writes: ``out`` when given; else ``<run>/images/<command>.png`` for a
    checkpoint of a run (``runs/<model>-<data>/version_N/checkpoints/``), else ``<command>.png`` next to
    the checkpoint (inside a folder written by ``aegen export``, beside its ``samples.png``)."""
    if out is not None:
        return Path(out)
    from aegen.training import run_folder

    run = run_folder(checkpoint)
    if run is not None:
        return run / "images" / f"{command}.png"
    checkpoint = Path(checkpoint)
    return (checkpoint if checkpoint.is_dir() else checkpoint.parent) / f"{command}.png"


def _decode(model, codes):
    """Decode codes (N, D) in batches of DECODE_BATCH; images on the CPU."""
    import torch

    with torch.no_grad():
        return torch.cat([model.decode(z.to(model.device)).cpu() for z in codes.split(DECODE_BATCH)])


def list_names(presets: bool = False) -> None:
    """Models and datasets, one line each.

    Args:
        presets: list each model's presets instead (``aegen fit --model NAME --preset PRESET``).
    """
    from aegen.presets import catalogue as preset_catalogue

    for kind, entries in (preset_catalogue() if presets else registry.catalogue()).items():
        print(f"{kind}:")
        for name, description in entries.items():
            print(f"  {name:<14} {description}")


def sample(checkpoint: Path, out: ImageFile | None = None, num: SheetSize = 64, seed: Seed = 0) -> Path:
    """A PNG sheet of generated images, decoded 256 at a time; a sheet holds at most 10,000 images.

    Args:
        checkpoint: an aegen checkpoint (runs/<model>-<data>/version_N/checkpoints/last.ckpt).
        out: the image file to write (default: <run>/images/sample.png; outside a run, sample.png
            next to the checkpoint).
        num: images in the sheet, 1 to 10,000.
        seed: seed of the sampled codes.
    """
    import torch

    from aegen.checkpoint import load
    from aegen.viz import save_sheet

    model = load(checkpoint)
    generator = torch.Generator().manual_seed(seed)
    sizes = [min(DECODE_BATCH, num - i) for i in range(0, num, DECODE_BATCH)]  # bounded memory
    sheet = torch.cat([model.sample(n, generator=generator).cpu() for n in sizes])
    return save_sheet(sheet, sheet_path(checkpoint, out, "sample"))


def interpolate(checkpoint: Path, out: ImageFile | None = None, pairs: SheetSide = 8, steps: Steps = 10,
                split: Split = "test", path: Literal["linear", "spherical", "neighbours"] = "linear", k: Count = 10,
                bank: AtLeast2 = 2000, seed: Seed = 0) -> Path:
    """A PNG sheet of interpolations between pairs of test images (rows: pairs; columns: the first real image,
    the steps from alpha 0 to 1, the second real image; alpha above each column). Models without an encoder
    (dcgan, lsgan, wgan_gp) interpolate between pairs of generator inputs instead, saying so on stderr.

    Args:
        checkpoint: an aegen checkpoint.
        out: the image file to write (default: <run>/images/interpolate.png; outside a run, interpolate.png
            next to the checkpoint).
        pairs: rows: pairs of images.
        steps: columns: images along each path, at least 2 (a sheet holds at most 10,000).
        split: the split the images come from.
        path: straight line, great circle, or the shortest path through the k-nearest-neighbour graph
            of the split's codes (GAIA's Figure 0).
        k: neighbours per code for ``--path neighbours``.
        bank: images of ``--split`` to draw pairs (and paths) from.
        seed: seed of the pairs drawn.
    """
    import torch

    from aegen.checkpoint import load, load_datamodule
    from aegen.latent import encode_all, neighbour_path, path_codes
    from aegen.viz import interpolation_rows, save_sheet

    _check_sheet(pairs, steps, "--pairs x --steps")
    model = load(checkpoint)
    if not model.has_encoder:
        return _interpolate_generator_inputs(model, checkpoint, out, pairs, steps, path, seed)
    images, _ = load_datamodule(checkpoint).tensors(split, bank)
    if len(images) < 2:
        raise AegenError(f"--split {split} has {len(images)} image(s); an interpolation needs 2: use another --split")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[: 2 * pairs]
    starts, ends = pick[: len(pick) // 2], pick[len(pick) // 2 :]
    if path == "neighbours":
        codes = encode_all(model, images)
        rows = [path_codes(codes, neighbour_path(codes, int(a), int(b), k), steps) for a, b in zip(starts, ends)]
        sheet = _decode(model, torch.stack(rows).flatten(0, 1)).unflatten(0, (len(rows), steps))
    else:
        per = max(1, DECODE_BATCH // steps)  # pairs decoded at a time
        sheet = torch.cat([model.interpolate(images[a], images[b], steps, spherical=path == "spherical").cpu()
                           for a, b in zip(starts.split(per), ends.split(per))])
    labelled = interpolation_rows(images[starts], sheet, images[ends])  # the real pair at each row's ends
    return save_sheet(labelled, sheet_path(checkpoint, out, "interpolate"))


def _interpolate_generator_inputs(model, checkpoint: Path, out: str | None, pairs: int, steps: int, path: str,
                                  seed: int) -> Path:
    """``interpolate`` for a model without an encoder: paths between pairs of its generated codes (rows: pairs;
    columns: alpha from 0, a sample, to 1, another), after a line on stderr saying so."""
    import sys

    import torch

    from aegen.latent import generator_interpolation
    from aegen.viz import Sheet, numbers, save_sheet

    name = model.registry_name
    if path == "neighbours":
        raise AegenError(f"{name} has no encoder, so no codes of real images for --path neighbours; "
                         "use --path linear or spherical (paths between generator inputs)")
    print(f"{name} has no encoder; interpolating between generator inputs instead", file=sys.stderr)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    per = max(1, DECODE_BATCH // steps)  # pairs decoded at a time
    sheet = torch.cat([generator_interpolation(model, min(per, pairs - i), steps, path == "spherical", generator).cpu()
                       for i in range(0, pairs, per)])
    labelled = Sheet(sheet, cols=numbers(torch.linspace(0, 1, steps)), corner="alpha")
    return save_sheet(labelled, sheet_path(checkpoint, out, "interpolate"))


def traverse(checkpoint: Path, out: ImageFile | None = None, steps: Steps = 10, span: PositiveNumber | None = None,
             code: Index | None = None, image: Index | None = None, split: Split = "test", seed: Seed = 0) -> Path:
    """A PNG sheet of latent traversals: one row per code dimension (LatentGAN: per category), each labelled, and
    the swept value above each column.

    Args:
        checkpoint: an aegen checkpoint.
        out: the image file to write (default: <run>/images/traverse.png; outside a run, traverse.png
            next to the checkpoint).
        steps: columns: values of the swept code, at least 2.
        span: sweep range: +-span std of the codes (default 2); LatentGAN: +-span of its continuous
            code (default 1.5, the paper's figures).
        code: sweep only this code dimension (LatentGAN: which continuous code, default 0).
        image: traverse around the code of this image of ``--split`` (default: the mean code).
        split: the split ``--image`` indexes.
        seed: seed of the codes drawn where the model needs some.
    """
    import torch

    from aegen.checkpoint import load, load_datamodule
    from aegen.models.base import GenerativeAE
    from aegen.viz import save_sheet, traversal_sheet

    model = load(checkpoint)
    if type(model).traversal is GenerativeAE.traversal:  # one row per code dimension (models may override)
        if code is not None and code >= model.latent_dim:
            raise AegenError(f"--code {code} does not exist: the model has code dimensions 0 to {model.latent_dim - 1}")
        _check_sheet(1 if code is not None else model.latent_dim, steps, "the code dimensions x --steps")
    x = None
    if image is not None and not model.has_encoder:
        raise AegenError(f"{model.registry_name} has no encoder, so no code of an image to traverse around; "
                         "leave out --image (traversals around the mean generator input)")
    if image is not None:
        images, _ = load_datamodule(checkpoint).tensors(split)
        if not 0 <= image < len(images):
            raise AegenError(f"no {split} image {image}: choose --image between 0 and {len(images) - 1}")
        x = images[image : image + 1]
    sheet = traversal_sheet(model, x, steps=steps, span=span, code=code, generator=torch.Generator().manual_seed(seed))
    return save_sheet(sheet, sheet_path(checkpoint, out, "traverse"))


def attribute(checkpoint: Path, *, attr: str | None = None, landmarks: LandmarkAttribute | None = None,
              strengths: Range = Range("-3,3"), steps: Steps = 7, num: SheetSide = 8, bank: AtLeast2 = 10000,
              out: ImageFile | None = None) -> Path:
    """A PNG sheet of attribute vectors added to test images (rows: images; columns: strengths, labelled).

    Args:
        checkpoint: an aegen checkpoint.
        attr: a named attribute (CelebA: Smiling, Male, ...), a factor value (fonts: letter=3) or a
            class (class=3).
        landmarks: instead of --attr, a continuous attribute computed from the data's facial landmarks
            (CelebA's list_landmarks_align_celeba.txt); rotation: head rotation, the nose's distance to
            the mean left vs right eye/mouth point (GAIA's Figure 6); strength 1 is one standard
            deviation of it in the regressed images.
        strengths: LOW,HIGH multiples of the attribute vector.
        steps: columns: strengths from LOW to HIGH, at least 2.
        num: test images, one per row.
        bank: training images the vectors are regressed on.
        out: the image file to write (default: <run>/images/attribute.png; outside a run, attribute.png
            next to the checkpoint).
    """
    import torch

    from aegen.checkpoint import load, load_datamodule
    from aegen.landmarks import landmark_attribute
    from aegen.latent import attribute_table, attribute_vectors, encode_all
    from aegen.viz import Sheet, numbers, save_sheet

    if (attr is None) == (landmarks is None):
        raise AegenError("give exactly one of --attr NAME and --landmarks rotation")
    _check_sheet(num, steps, "--num x --steps")
    model = load(checkpoint)
    datamodule = load_datamodule(checkpoint)
    images, labels = datamodule.tensors("train", bank)
    if landmarks is not None:
        names, table = [landmarks], landmark_attribute(datamodule, landmarks, "train", bank).unsqueeze(1)
    else:
        names, table = attribute_table(datamodule, labels)
    if attr is not None and attr not in names:
        shown = ", ".join(names[:50]) + (", …" if len(names) > 50 else "")
        raise AegenError(f"unknown attribute {attr!r} for {datamodule.registry_name}; choose one of: {shown}")
    vector = attribute_vectors(encode_all(model, images), table.to(model.device))[names.index(attr or landmarks)]
    values = torch.linspace(*strengths, steps, device=model.device)
    x = datamodule.tensors("test", num)[0]
    codes = encode_all(model, x).unsqueeze(1) + values.view(1, -1, 1) * vector
    sheet = _decode(model, codes.flatten(0, 1)).unflatten(0, (len(x), steps))
    labelled = Sheet(sheet, cols=numbers(values), corner=attr or landmarks)
    return save_sheet(labelled, sheet_path(checkpoint, out, "attribute"))


def _factor_images(checkpoint: Path, factor: str, split: str):
    """The model, the factor's index, its code block and (images, factors) of ``split`` for explore/edit."""
    from aegen.checkpoint import load, load_datamodule
    from aegen.metrics.controllability import factor_blocks

    model = load(checkpoint)
    datamodule = load_datamodule(checkpoint)
    names = list(datamodule.factor_names or [])
    if factor not in names:
        raise AegenError(f"unknown factor {factor!r}; {datamodule.registry_name} has: {', '.join(names) or 'no factors'}")
    blocks = factor_blocks(model, datamodule)
    if factor not in blocks:
        raise AegenError(f"the model has no block for {factor}; its blocks are {', '.join(blocks)}")
    return model, datamodule, names.index(factor), blocks[factor], *datamodule.tensors(split)


def explore(checkpoint: Path, *, factor: str, out: ImageFile | None = None, num: SheetSide = 8, steps: Steps = 8,
            split: Split = "test", seed: Seed = 0) -> Path:
    """A PNG sheet exploring one factor's code block (rows: test images; columns: steps from the
    image's block, 0, to another image's, 1, labelled).

    Args:
        checkpoint: an aegen checkpoint of a model trained on factor data.
        factor: a factor of the data, e.g. background_colour.
        out: the image file to write (default: <run>/images/explore.png; outside a run, explore.png
            next to the checkpoint).
        num: images, one per row.
        steps: columns, at least 2.
        split: the split the images come from.
        seed: seed of the images drawn.
    """
    import torch

    from aegen.latent import encode_all
    from aegen.metrics.controllability import decode_all, different_partners, explore_codes
    from aegen.viz import Sheet, numbers, save_sheet

    _check_sheet(num, steps, "--num x --steps")
    model, _, k, dims, images, factors = _factor_images(checkpoint, factor, split)
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(images), generator=generator)[:num]
    ends = different_partners(factors[:, k], generator)[rows]
    ends = torch.where(ends >= 0, ends, rows)
    codes = encode_all(model, images, device="cpu")
    path = explore_codes(codes[rows], codes[ends], dims, steps)
    sheet = decode_all(model, path.flatten(0, 1)).unflatten(0, path.shape[:2])
    labelled = Sheet(sheet, cols=numbers(torch.linspace(0, 1, steps)), corner=factor)
    return save_sheet(labelled, sheet_path(checkpoint, out, "explore"))


def edit(checkpoint: Path, *, factor: str, value: str, out: ImageFile | None = None, num: SheetSide = 8,
         split: Split = "test", seed: Seed = 0) -> Path:
    """A PNG sheet setting one factor of test images to the value of an image that has it (columns,
    labelled: that image, under the value, the original, the edit).

    Args:
        checkpoint: an aegen checkpoint of a model trained on factor data.
        factor: a factor of the data, e.g. font_colour.
        value: the value: an index, or a name where the data names them (fonts: white).
        out: the image file to write (default: <run>/images/edit.png; outside a run, edit.png
            next to the checkpoint).
        num: images, one per row.
        split: the split the images come from.
        seed: seed of the images drawn.
    """
    import torch

    from aegen.latent import encode_all
    from aegen.metrics.controllability import decode_all, edit_codes, parse_value
    from aegen.viz import Sheet, save_sheet

    _check_sheet(num, 3, "--num (3 images a row)")
    model, datamodule, k, dims, images, factors = _factor_images(checkpoint, factor, split)
    wanted = parse_value(datamodule, factor, value)
    generator = torch.Generator().manual_seed(seed)
    having = (factors[:, k] == wanted).nonzero().flatten()
    if len(having) == 0:
        raise AegenError(f"no {split} image has {factor} = {value}; try another --split or value")
    source = having[torch.randint(len(having), (1,), generator=generator)]
    rows = torch.randperm(len(images), generator=generator)[:num]
    codes = encode_all(model, images, device="cpu")
    edited = decode_all(model, edit_codes(codes[rows], codes[source].expand(len(rows), -1), dims))
    sheet = torch.stack([images[source].expand(len(rows), -1, -1, -1), images[rows], edited], dim=1)
    labelled = Sheet(sheet, cols=[value, "original", "edit"], corner=factor)
    return save_sheet(labelled, sheet_path(checkpoint, out, "edit"))


def prior(checkpoint: Path, *, out: OutputFile, kind: Literal["gan", "gmm"] = "gan", steps: Count = 2000,
          batch_size: Count = 128, components: Count = 10, gan_loss: Literal["mmd", "standard"] = "mmd",
          seed: Seed = 0) -> None:
    """Fit a learned prior (latent GAN or Gaussian mixture) to a trained model's codes -> a new
    checkpoint whose samples use it.

    Args:
        checkpoint: an aegen checkpoint.
        out: the new checkpoint (.ckpt).
        kind: gan: a code generator trained adversarially on the codes, decoder frozen; gmm: a
            Gaussian mixture.
        steps: gan: latent-GAN updates (one D and one G step each).
        batch_size: codes per batch.
        components: gmm: mixture components.
        gan_loss: gan: the code generator's loss; mmd: match D's features of the codes with a kernel
            MMD, starting from the codes' Gaussian; standard: a plain MLP generator with the
            non-saturating GAN loss (the LatentGAN paper's).
        seed: seed of the fit.
    """
    from aegen.prior import fit_prior

    gan = {"gan_loss": gan_loss, "gaussian_start": gan_loss == "mmd"} if kind == "gan" else {}
    fit_prior(checkpoint, out, kind=kind, steps=steps, batch_size=batch_size, seed=seed, gmm_components=components,
              **gan)
    print(f"checkpoint: {out}")


def export(checkpoint: Path, *, out: OutputDir, num: SheetSize = 64, seed: Seed = 0) -> Path:
    """A shareable folder of a trained model: model.safetensors, config.yaml, a model card README.md
    and samples.png; `aegen.load(DIR)` and every command taking a checkpoint read it, running no code.

    Args:
        checkpoint: an aegen checkpoint (or an exported folder).
        out: the folder to write.
        num: images in samples.png, 1 to 10,000.
        seed: seed of the sampled codes.
    """
    from aegen.export import export as write_export

    return write_export(checkpoint, out, num_samples=num, seed=seed)


def predict(checkpoint: Path, *, out: OutputFile, split: Split = "test", batch_size: Count = 256) -> Path:
    """Encode a split of the checkpoint's data -> a torch file {"codes", "labels", "split", "checkpoint"}
    that ``torch.load(weights_only=True)`` reads.

    Args:
        checkpoint: an aegen checkpoint (or an exported folder).
        out: the file to write (e.g. codes.pt).
        split: the split to encode.
        batch_size: images encoded at a time.
    """
    import torch

    from aegen.checkpoint import load, load_datamodule
    from aegen.latent import encode_all

    model = load(checkpoint)
    images, labels = load_datamodule(checkpoint).tensors(split)
    if len(images) == 0:
        raise AegenError(f"--split {split} of {checkpoint} has no images; use another --split")
    codes = encode_all(model, images, batch_size=batch_size, device="cpu")
    torch.save({"codes": codes, "labels": labels, "split": split, "checkpoint": str(checkpoint)}, out)
    return Path(out)
