"""Training throughput: aegen's Trainer vs a hand-written PyTorch loop, same nets, same batches.

For each model, times training steps per second (a) through ``aegen fit``'s Trainer setup
(LightningCLI-built Trainer with its default callbacks, CSV logger and rich progress bar) on the
embedded digits, and (b) in a plain PyTorch loop that does the same forward/backward/optimiser
work on the same in-memory batches. Prints the ratio (a)/(b); the goal is >= 0.95 on CPU.

    python benchmarks/throughput.py [--models ae,vae,aae] [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from aegen.lightning_cli import AegenCLI, class_path
from aegen.data.base import AEDataModule
from aegen.losses import adversarial_loss, discriminator_loss, gaussian_kl
from aegen.models.base import GenerativeAE
from aegen.registry import get_data, get_model


def _adam(model, params):
    return torch.optim.Adam(params, lr=model.hparams.lr, betas=tuple(model.hparams.betas))


def ae_loop(model):
    opt = _adam(model, model.parameters())

    def step(x):
        loss = F.mse_loss(model.decoder(model.encoder(x)), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def vae_loop(model):
    opt = _adam(model, model.parameters())

    def step(x):
        mu, logvar = model.encoder(x).chunk(2, dim=-1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = F.mse_loss(model.decoder(z), x, reduction="none").flatten(1).sum(1).mean()
        loss = recon + model.beta * gaussian_kl(mu, logvar).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def aae_loop(model):
    enc, dec, disc = model.encoder, model.decoder, model.discriminator
    opt_ae = _adam(model, [*enc.parameters(), *dec.parameters()])
    opt_d = _adam(model, disc.parameters())
    opt_g = _adam(model, enc.parameters())

    def step(x):
        loss = F.mse_loss(dec(enc(x)), x)
        opt_ae.zero_grad(set_to_none=True)
        loss.backward()
        opt_ae.step()
        with torch.no_grad():
            fake = enc(x)
        d_loss = discriminator_loss(disc(torch.randn_like(fake)), disc(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in disc.parameters():
            p.requires_grad_(False)
        g_loss = adversarial_loss(disc(enc(x)), real=True)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in disc.parameters():
            p.requires_grad_(True)

    return step


HAND_WRITTEN = {"ae": ae_loop, "vae": vae_loop, "aae": aae_loop}


class StepTimer(pl.Callback):
    """Wall time between the end of batch ``warmup`` and the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.batches = warmup, None, None, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1
        if self.batches == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def time_trainer(name: str, steps: int, warmup: int, root: str) -> float:
    batches = steps + warmup
    cli = AegenCLI(
        GenerativeAE, AEDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
        args=[f"--model={class_path(get_model(name))}", f"--data={class_path(get_data('digits'))}",
              "--trainer.accelerator=cpu", "--trainer.max_epochs=1000", f"--trainer.default_root_dir={root}",
              "--trainer.limit_val_batches=0", "--trainer.enable_model_summary=false"],
        seed_everything_default=0, trainer_defaults={"log_every_n_steps": 10}, auto_configure_optimizers=False,
    )
    timer = StepTimer(warmup)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit_loop.epoch_loop.max_steps = -1
    cli.trainer.limit_train_batches = batches  # one "epoch" of exactly `batches` batches
    cli.trainer.fit_loop.max_epochs = 1
    loader_len = len(cli.datamodule.train_dataloader())
    if loader_len < batches:  # repeat epochs until enough batches ran
        cli.trainer.fit_loop.max_epochs = -(-batches // loader_len)
        cli.trainer.limit_train_batches = 1.0
    cli.trainer.fit(cli.model, cli.datamodule)
    return (timer.batches - warmup) / (timer.end - timer.start)


def time_hand_loop(name: str, steps: int, warmup: int) -> float:
    pl.seed_everything(0, verbose=False)
    model = get_model(name)(img_shape=(1, 32, 32), num_classes=10)
    model = copy.deepcopy(model).train()
    datamodule: AEDataModule = get_data("digits")()
    loader = datamodule.train_dataloader()
    batches = []
    while len(batches) < steps + warmup:
        batches.extend(x for x, _ in loader)
    step = HAND_WRITTEN[name](model)
    for x in batches[:warmup]:
        step(x)
    start = time.perf_counter()
    for x in batches[warmup : warmup + steps]:
        step(x)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(HAND_WRITTEN))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs on each side")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in args.models.split(","):
            lightning, hand = 0.0, 0.0
            for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both sides
                lightning = max(lightning, time_trainer(name, args.steps, args.warmup, root))
                hand = max(hand, time_hand_loop(name, args.steps, args.warmup))
            rows.append((name, lightning, hand, lightning / hand))
    print(f"\n{'model':<8}{'aegen steps/s':>15}{'hand loop steps/s':>19}{'ratio':>8}")
    for name, lightning, hand, ratio in rows:
        print(f"{name:<8}{lightning:>15.1f}{hand:>19.1f}{ratio:>8.3f}")


if __name__ == "__main__":
    main()
