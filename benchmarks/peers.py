"""aegen vs pythae: training steps/s and the wall time of a whole 1-epoch process, same nets, same data.

Both sides train aegen's ConvEncoder/ConvDecoder (pythae's through its BaseEncoder/BaseDecoder
interfaces; the aae's discriminator is aegen's LatentDiscriminator) on the embedded digits
(32x32, latent 16, width 32, batch 64, Adam lr 1e-3), on the CPU:

* steps/s of ae, vae and aae, interleaved in one process, best of ``--repeats``: aegen through the
  Trainer that ``aegen fit`` builds (``throughput.time_trainer``: the time between its epochs, checkpoints
  and image sheets, left out), pythae through its BaseTrainer (AE, VAE) or AdversarialTrainer
  (Adversarial_AE) over one long epoch, each timed from the end of batch ``--warmup``;
* the wall time of a whole process that trains 1 epoch and validates: ``aegen fit --model ae
  --trainer.max_epochs 1`` vs a pythae TrainingPipeline on the same train/val split (handed to it
  as a tensor file, so its time leaves out decoding the digits, which aegen's includes).

pythae's Adversarial_AE takes 2 backward passes per batch (autoencoder loss with the adversarial
term, then the discriminator) where aegen's aae runs the paper's 3 phases (reconstruction,
discriminator, generator); the ``aae hand loop`` row is aegen's algorithm in plain PyTorch
(``throughput.aae_loop``), the same-algorithm reference.

    pip install 'aegen[bench]'   # pythae
    python benchmarks/peers.py [--models ae,vae,aae] [--steps 100] [--warmup 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aegen.nets import ConvDecoder, ConvEncoder, LatentDiscriminator

IMG_SHAPE, LATENT, WIDTH, BATCH, LR = (1, 32, 32), 16, 32, 64, 1e-3
MODELS = ("ae", "vae", "aae")
HAND = "aae hand loop"
NOTE = ("note: pythae's Adversarial_AE takes 2 backward passes per batch, aegen's aae the paper's 3 phases; "
        "'aae hand loop' is aegen's algorithm in plain PyTorch")


def require_pythae() -> None:
    """Exit 2 with one line when pythae cannot be imported here; quiet its INFO logging otherwise."""
    try:
        importlib.import_module("pythae.pipelines")  # imports its models and trainers
    except Exception as err:  # noqa: BLE001 - any import failure: missing, or broken with this torch
        print(f"peers: pythae cannot be imported with torch {torch.__version__} ({type(err).__name__}: {err}); "
              "install it with `pip install 'aegen[bench]'`", file=sys.stderr)
        sys.exit(2)
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("pythae")]:
        logging.getLogger(name).setLevel(logging.WARNING)


def pythae_model(name: str) -> Any:
    """pythae's AE, VAE or Adversarial_AE around aegen's nets, shaped as aegen's ae, vae and aae."""
    from pythae.models import AE, VAE, Adversarial_AE, Adversarial_AE_Config, AEConfig, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder

    class Encoder(BaseEncoder):
        """ConvEncoder -> ``embedding`` (plus ``log_covariance``: a VAE's, or zeros for a deterministic AAE)."""

        def __init__(self, variational: bool, zero_covariance: bool = False) -> None:
            super().__init__()
            self.net = ConvEncoder(IMG_SHAPE, (2 if variational else 1) * LATENT, width=WIDTH)
            self.variational, self.zero_covariance = variational, zero_covariance

        def forward(self, x: Tensor) -> ModelOutput:
            h = self.net(x)
            if self.variational:
                mu, logvar = h.chunk(2, dim=-1)
                return ModelOutput(embedding=mu, log_covariance=logvar.clamp(-30, 20))
            return ModelOutput(embedding=h, log_covariance=torch.zeros_like(h)) if self.zero_covariance else \
                ModelOutput(embedding=h)

    class Decoder(BaseDecoder):
        """ConvDecoder -> ``reconstruction``."""

        def __init__(self) -> None:
            super().__init__()
            self.net = ConvDecoder(IMG_SHAPE, LATENT, width=WIDTH)

        def forward(self, z: Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=self.net(z))

    class Discriminator(BaseDiscriminator):
        """LatentDiscriminator -> probability ``embedding`` (pythae's losses take probabilities)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = LatentDiscriminator(LATENT)

        def forward(self, z: Tensor) -> ModelOutput:
            return ModelOutput(embedding=torch.sigmoid(self.net(z)))

    shape = {"input_dim": IMG_SHAPE, "latent_dim": LATENT}
    if name == "ae":
        return AE(AEConfig(**shape), encoder=Encoder(False), decoder=Decoder())
    if name == "vae":
        return VAE(VAEConfig(**shape, reconstruction_loss="mse"), encoder=Encoder(True), decoder=Decoder())
    return Adversarial_AE(Adversarial_AE_Config(**shape, deterministic_posterior=True), encoder=Encoder(False, True),
                          decoder=Decoder(), discriminator=Discriminator())


def pythae_config(name: str, out: str, epochs: int) -> Any:
    """pythae's trainer settings matching aegen's defaults (batch 64, Adam lr 1e-3, betas 0.9/0.999, CPU)."""
    from pythae.trainers import AdversarialTrainerConfig, BaseTrainerConfig

    common = {"output_dir": out, "per_device_train_batch_size": BATCH, "per_device_eval_batch_size": BATCH,
              "num_epochs": epochs, "no_cuda": True, "seed": 0}
    adam = {"betas": (0.9, 0.999)}
    if name == "aae":
        return AdversarialTrainerConfig(**common, autoencoder_learning_rate=LR, discriminator_learning_rate=LR,
                                        autoencoder_optimizer_params=adam, discriminator_optimizer_params=adam)
    return BaseTrainerConfig(**common, learning_rate=LR, optimizer_params=adam)


def digits_splits() -> dict[str, Tensor]:
    """aegen's digits train and val images, as its loaders yield them: float (N, 1, 32, 32) in [-1, 1]."""
    from aegen.data.base import from_uint8
    from aegen.registry import get_data

    datamodule = get_data("digits")()
    return {name: from_uint8(datamodule.split(name)[0]) for name in ("train", "val")}


def time_pythae(name: str, images: Tensor, steps: int, warmup: int, root: str) -> float:
    """pythae's steps/s: its trainer's epoch loop (``train_step``) over exactly ``warmup + steps`` batches."""
    from pythae.data.datasets import BaseDataset
    from pythae.trainers import AdversarialTrainer, BaseTrainer
    from pythae.trainers.training_callbacks import TrainingCallback

    class StepTimer(TrainingCallback):
        """Wall time between the end of batch ``warmup`` and the end of the last batch."""

        def __init__(self) -> None:
            self.batches, self.start, self.end = 0, 0.0, 0.0

        def on_train_step_end(self, training_config: Any, **kwargs: Any) -> None:
            self.batches += 1
            if self.batches == warmup:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    torch.manual_seed(0)
    n = (steps + warmup) * BATCH
    data = images.repeat(-(-n // len(images)), 1, 1, 1)[:n]
    timer = StepTimer()
    trainer = (AdversarialTrainer if name == "aae" else BaseTrainer)(
        model=pythae_model(name), train_dataset=BaseDataset(data, torch.zeros(n)),
        training_config=pythae_config(name, root, 1), callbacks=[timer])
    trainer.prepare_training()
    trainer.train_step(epoch=1)
    return (timer.batches - warmup) / (timer.end - timer.start)


def steps_table(models: list[str], steps: int, warmup: int, repeats: int, root: str) -> dict[str, list[float]]:
    """name -> [aegen, pythae] steps/s per model (plus ``aae hand loop`` -> [hand loop]), best of ``repeats``
    interleaved runs."""
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import time_hand_loop, time_trainer  # time_hand_loop("aae"): the hand-written aae_loop

    images = digits_splits()["train"]
    best: dict[str, list[float]] = {}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both sides
        for name in models:
            runs = [time_trainer(name, steps, warmup, root), time_pythae(name, images, steps, warmup, root)]
            if name == "aae":
                best[HAND] = [max(best.get(HAND, [0.0])[0], time_hand_loop("aae", steps, warmup))]
            best[name] = [max(a, b) for a, b in zip(best.get(name, [0.0, 0.0]), runs, strict=True)]
    return best


def run_pipeline(data_file: str, out: str) -> None:
    """Child process: a pythae TrainingPipeline training the ae for 1 epoch on the split in ``data_file``."""
    from pythae.pipelines import TrainingPipeline

    splits = torch.load(data_file)
    TrainingPipeline(model=pythae_model("ae"), training_config=pythae_config("ae", out, 1))(
        train_data=splits["train"], eval_data=splits["val"])


def wall(command: list[str]) -> float:
    """Seconds a subprocess takes from start to exit; a failure raises with the end of its stderr."""
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def wall_table(repeats: int, root: str) -> tuple[float, float]:
    """(aegen, pythae) best-of-``repeats`` wall seconds of a whole 1-epoch ae process, interleaved."""
    data_file = Path(root) / "digits.pt"
    torch.save(digits_splits(), data_file)
    aegen_cmd = [sys.executable, "-m", "aegen", "fit", "--model", "ae", "--trainer.max_epochs", "1",
                 "--trainer.accelerator", "cpu", f"--trainer.default_root_dir={root}"]
    pythae_cmd = [sys.executable, __file__, "--pipeline", str(data_file), "--out", str(Path(root) / "pythae")]
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        best = [min(best[0], wall(aegen_cmd)), min(best[1], wall(pythae_cmd))]
    return best[0], best[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from ae,vae,aae")
    parser.add_argument("--steps", type=int, default=100, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs on each side")
    parser.add_argument("--no-wall", action="store_true", help="skip the whole-process 1-epoch timing")
    parser.add_argument("--pipeline", help=argparse.SUPPRESS)  # child process: pythae's 1-epoch run
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    require_pythae()
    if args.pipeline:
        run_pipeline(args.pipeline, args.out)
        return 0
    models = args.models.split(",")
    if set(models) - set(MODELS) or args.steps < 1 or args.warmup < 1 or args.repeats < 1:
        parser.error(f"--models takes names from {','.join(MODELS)}; --steps, --warmup, --repeats must be >= 1")
    with tempfile.TemporaryDirectory() as root:
        rows = steps_table(models, args.steps, args.warmup, args.repeats, root)
        walls = None if args.no_wall else wall_table(args.repeats, root)
    print(f"\n{'model':<8}{'aegen steps/s':>15}{'pythae steps/s':>16}{'aegen/pythae':>14}")
    for name in models:
        ours, theirs = rows[name]
        print(f"{name:<8}{ours:>15.1f}{theirs:>16.1f}{ours / theirs:>14.3f}")
    if HAND in rows:
        hand, (ours, theirs) = rows[HAND][0], rows["aae"]
        print(f"{NOTE}\n{HAND}: {hand:.1f} steps/s; aegen aae / hand loop {ours / hand:.3f}, "
              f"hand loop / pythae {hand / theirs:.3f}")
    if walls is not None:
        print(f"\nwhole process, 1 epoch of ae: aegen {walls[0]:.1f} s, pythae {walls[1]:.1f} s, "
              f"aegen/pythae {walls[0] / walls[1]:.3f} (below 1: aegen finishes sooner)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
