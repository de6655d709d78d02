"""LatentGAN autoencoder (Kalwar, Aich & Dixit): an InfoGAN that learns an autoencoder's code distribution.

The paper's algorithm, for each minibatch X:

1. ``reconstruction_phase`` (Eq. 1): Enc and Dec minimise ||X - Dec(Enc(X))||^2.
2. ``discriminator_phase`` (Eq. 2 and 3): with noise P ~ N(0, I), categorical codes c ~ Cat(K) and
   continuous codes u ~ U(-1, 1), D maximises V(D, G) = E[log D(Enc(X))] + E[log(1 - D(G(P, c, u)))]
   with noisy labels, and D and Q (Q shares D's trunk) minimise L_I = lambda_disc * CE(c, Q_c) +
   lambda_cont * ||u - Q_u||^2 on G's codes, InfoGAN's variational bound on I(c; G(P, c)).
3. ``generator_phase`` (Eq. 2 and 3): G fools D (the non-saturating -log D(G(P, c, u))) and
   minimises the same L_I.

Enc(X) is detached in the latent GAN: the autoencoder learns from Eq. 1 only. Samples decode G(P, c, u);
clusters are argmax Q_c(Enc(X)), the paper's unsupervised classifier.

Presets (``aegen fit --model latentgan --preset NAME``, or ``aegen.presets.options("latentgan", NAME)``):
``paper`` is Table 2 (MNIST 1x32x32), ``paper_chairs`` Table 3 (3D chairs 1x64x64), ``paper_celeba``
Table 4 (CelebA 3x32x32): the paper's nets, raw codes, one latent GAN with one update per
minibatch, Adam 2e-4 (0.5, 0.9), batch 128. ``conv`` is the default latent GAN (8 updates per
minibatch, autoencoder at 2e-4) on aegen.nets' batch-normalised conv autoencoder with a 16-d code.
The defaults (``default``) train on any supported image size in a short CPU run, and differ from
the paper as follows, each for a reason:

- Table 2's autoencoder is scaled to the image size and ``width`` (``table2_widths``; Table 2
  itself at 32 px), so the model runs on every dataset.
- ``standardize_codes``: the latent GAN sees codes centred and divided by one overall std. The
  decoder's batch norm leaves the code scale arbitrary (a few hundredths with Table 2's nets on
  digits), which starved D and Q.
- ``restarts`` 16: latent GANs trained side by side on the same codes, keeping the one whose Q is
  most informative about them (label-free, like k-means' ``n_init``): InfoGAN's clusters vary with the seed.
- a small latent GAN (16-d noise, 256-256 MLPs, lambda_disc 1) with 16 updates per minibatch and
  Adam at 1e-3 for every player: on small data and short runs the latent GAN converges, and the
  codes settle, where the paper's 2e-4 leaves them moving under it for the whole run (tuned on the
  embedded digits and 5,000 MNIST digits, RESULTS.md).

Choices where the paper is silent or inconsistent: the decoder's final conv has one channel per
image channel (Table 2 prints 3 for MNIST); Table 3's batch-norm widths are typos for the conv
widths; Table 3 has 2 continuous codes, as its G input (190 = 128 + 3 x 20 + 2) and Q head
("fc-o2") say, although the text mentions one; noisy labels are one-sided label smoothing plus a
small label-flip rate; the information term updates both players, as in InfoGAN's reference code;
Tables 3 and 4 train as Table 2 ("same as MNIST") but for the lambdas. Beyond the paper,
``sample_conditional`` maps categories to classes by Hungarian matching on the validation split.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from aegen.losses import adversarial_loss, information_loss
from aegen.metrics.clustering import contingency
from aegen.models.base import GenerativeAE
from aegen.models.info_codes import InfoCodes
from aegen.models.latentgan.nets import DiscriminatorQ, autoencoder
from aegen.models.latentgan.restarts import Reduce, Restarts
from aegen.nets import EnsembleMLP
from aegen.registry import register_model


@register_model("latentgan")
class LatentGAN(InfoCodes, GenerativeAE):
    """LatentGAN autoencoder: an InfoGAN in the latent space of an MSE autoencoder; clusters = Q's category.

    Args:
        arch: the autoencoder: ``table2``, the paper's strided-conv encoder and upsampling decoder,
            or ``conv``, aegen.nets' batch-normalised ConvEncoder/ConvDecoder (scaled by ``width``).
        encoder_channels: channels of the encoder's k4 s2 convs (paper: 16-32-64-128-128; Table 3
            64-128-256-512-1024-128; Table 4 64-128-256-512-128); None: ``table2_widths``.
        decoder_channels: channels of the decoder's upsample + conv3 + BN blocks, which fix the image
            size at 4 x 2^blocks (paper: 128-64-32; 512-256-128-64; 512-256-128); None: as above.
        latent_dim: size of the autoencoder's code (paper: 64 in Table 2, 128 in Tables 3 and 4).
        noise_dim: size of G's Gaussian noise P (paper: the code size).
        num_categorical: number of categorical codes; the first is the cluster head (paper: 1, 3, 10).
        num_categories: K, the categories of each categorical code (paper: 10, 20, 10).
        num_continuous: number of continuous codes u (paper: 2, 2, 0).
        continuous_range: u ~ U(-range, range) (paper: 1).
        lambda_disc: weight of Q's categorical cross-entropy (paper: 0.1, 10, 1).
        lambda_cont: weight of Q's continuous squared error (paper: 1).
        disc_hidden: hidden sizes of the D/Q trunk MLP (paper: 1000-1000-512; 3000-3000-3000-512).
        gen_hidden: hidden sizes of G's MLP (paper: 1000-1000-1000; 3000 x 4).
        label_smoothing: D's target for real codes is 1 - label_smoothing (0: hard labels).
        label_flip: probability that each of D's labels is flipped (0: none). Noisy labels for D
            help, the paper says; it does not say which kind.
        standardize_codes: run the latent GAN on (Enc(X) - mean) / std, with a running per-dimension
            mean and one std for all dimensions, which keeps the code's shape (the decoder starts with
            a ReLU: dimensions the encoder keeps negative carry nothing, and scaling each by its own
            std would blow them up); G's codes are mapped back. False: the paper's raw codes.
        code_momentum: update rate of the running code mean and std.
        gan_steps: discriminator + generator updates per minibatch, all on that minibatch's codes
            (paper: 1). More lets the latent GAN converge on small datasets and short runs.
        gan_lr: Adam learning rate of G and D/Q (None: ``lr``, as in the paper).
        restarts: latent GANs (G and D/Q) trained side by side on the same codes, each from its own
            initialisation and noise (paper: 1); after every training epoch the one whose Q is most
            informative about the real codes is kept for clusters and samples (see ``Restarts``).
        ae_epochs: train the autoencoder alone for this many epochs before the latent GAN starts
            (paper: 0, both from the start), so the GAN does not chase codes that still move.
        lr: Adam learning rate of the autoencoder, and of G and D/Q unless ``gan_lr`` is set (paper: 2e-4).
        betas: Adam betas (paper: 0.5, 0.9).
        width: scales the autoencoder's channels when they are None (Table 2: 32), and the ``conv`` nets'.
        num_classes: number of labels in the data (None if unlabelled); set by the CLI.
    """

    samples_from_code_gaussian = False

    def __init__(
        self,
        arch: Literal["table2", "conv"] = "table2",
        encoder_channels: tuple[int, ...] | None = None,
        decoder_channels: tuple[int, ...] | None = None,
        latent_dim: int = 64,
        noise_dim: int = 16,
        num_categorical: int = 1,
        num_categories: int = 10,
        num_continuous: int = 2,
        continuous_range: float = 1.0,
        lambda_disc: float = 1.0,
        lambda_cont: float = 1.0,
        disc_hidden: tuple[int, ...] = (256, 256),
        gen_hidden: tuple[int, ...] = (256, 256),
        label_smoothing: float = 0.1,
        label_flip: float = 0.05,
        standardize_codes: bool = True,
        code_momentum: float = 0.02,
        gan_steps: int = 16,
        gan_lr: float | None = None,
        restarts: int = 16,
        ae_epochs: int = 0,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.9),
        width: int = 32,
        num_classes: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(latent_dim=latent_dim, lr=lr, betas=betas, width=width, num_classes=num_classes, **kwargs)
        self.arch, self.width = arch, width
        self.encoder_channels, self.decoder_channels = (None if c is None else tuple(c) for c in (encoder_channels, decoder_channels))
        self.noise_dim, self.num_categorical, self.num_categories = noise_dim, num_categorical, num_categories
        self.num_continuous, self.continuous_range = num_continuous, continuous_range
        self.lambda_disc, self.lambda_cont = lambda_disc, lambda_cont
        self.disc_hidden, self.gen_hidden = tuple(disc_hidden), tuple(gen_hidden)
        self.label_smoothing, self.label_flip = label_smoothing, label_flip
        self.standardize_codes, self.code_momentum = standardize_codes, code_momentum
        self.gan_steps, self.gan_lr = gan_steps, lr if gan_lr is None else gan_lr
        self.restarts, self.ae_epochs, self.lr, self.betas = restarts, ae_epochs, lr, tuple(betas)
        self.check_options()
        self.register_buffer("code_mean", torch.zeros(latent_dim))
        self.register_buffer("code_std", torch.ones(latent_dim))
        self.register_buffer("code_stats_seen", torch.tensor(False))
        # category of the first categorical code matched to each data class (-1: not matched yet)
        self.register_buffer("class_categories", torch.full((num_classes or 0,), -1, dtype=torch.long))
        self.encoder, self.decoder = autoencoder(arch, self.img_shape, latent_dim, width, self.encoder_channels,
                                                 self.decoder_channels)
        self.gans = self.latent_gans()

    def check_options(self) -> None:
        """Raise a ValueError for options out of range or that do not fit together."""
        for option, low in (("noise_dim", 0), ("num_categorical", 1), ("num_categories", 2), ("num_continuous", 0),
                            ("gan_steps", 1), ("restarts", 1), ("ae_epochs", 0)):
            if getattr(self, option) < low:
                raise ValueError(f"{option} must be at least {low}, got {getattr(self, option)}")
        if not (0 <= self.label_smoothing < 0.5 and 0 <= self.label_flip < 0.5):
            raise ValueError("label_smoothing and label_flip must be in [0, 0.5)")
        if self.continuous_range <= 0 or self.lambda_disc < 0 or self.lambda_cont < 0 or self.gan_lr <= 0:
            raise ValueError("continuous_range and gan_lr must be positive and the lambdas non-negative")
        if not 0 < self.code_momentum <= 1:
            raise ValueError(f"code_momentum must be in (0, 1], got {self.code_momentum}")
        for option in ("disc_hidden", "gen_hidden", "encoder_channels", "decoder_channels"):
            sizes = getattr(self, option)
            if sizes is not None and (not sizes or min(sizes) < 1):
                raise ValueError(f"{option} must be one or more positive sizes, got {sizes}")
        if self.arch not in ("table2", "conv"):
            raise ValueError(f"arch must be table2 or conv, got {self.arch!r}")
        if self.arch == "conv" and (self.encoder_channels or self.decoder_channels):
            raise ValueError("encoder_channels and decoder_channels set the table2 nets; arch conv scales by width")

    def latent_gans(self) -> Restarts:
        """G (Gaussian noise, one-hot categories and continuous codes -> a code) and D/Q, ``restarts`` of each."""
        gen_in = self.noise_dim + self.num_categorical * self.num_categories + self.num_continuous
        generators = EnsembleMLP(self.restarts, gen_in, self.gen_hidden, self.latent_dim)
        discriminators = DiscriminatorQ(self.latent_dim, self.disc_hidden, self.num_categorical, self.num_categories,
                                        self.num_continuous, self.restarts)
        return Restarts(self.restarts, generators, discriminators)

    # ----------------------------------------------------------------- the latent GAN
    def discriminator(self, z: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """D/Q on codes in the latent GAN's space, the kept restart's on (B, D), every restart's on
        (restarts, B, D): (real/fake logits, [categorical logits...], continuous codes)."""
        return self.gans.discriminator(z)

    def gan_codes(self, noise: Tensor, categories: Tensor, continuous: Tensor) -> Tensor:
        """G(P, c, u) in the space D sees (standardised codes when ``standardize_codes``): the kept
        restart's on inputs (B, ...), or every restart's on inputs (restarts, B, ...)."""
        onehot = F.one_hot(categories, self.num_categories).flatten(-2).to(noise.dtype)
        return self.gans.generator(torch.cat([noise, onehot, continuous], dim=-1))

    def generate(self, noise: Tensor, categories: Tensor, continuous: Tensor) -> Tensor:
        """G(P, c, u) as an autoencoder code (B, latent_dim), from noise, category indices
        (B, num_categorical) and continuous codes (B, num_continuous)."""
        return self.from_gan_space(self.gan_codes(noise, categories, continuous))

    def to_gan_space(self, z: Tensor) -> Tensor:
        """Autoencoder codes -> the latent GAN's space: standardised, or unchanged (paper)."""
        return (z - self.code_mean) / self.code_std if self.standardize_codes else z

    def from_gan_space(self, z: Tensor) -> Tensor:
        """The inverse of ``to_gan_space``."""
        return z * self.code_std + self.code_mean if self.standardize_codes else z

    @torch.no_grad()
    def update_code_stats(self, z: Tensor) -> None:
        """Move the running per-dimension mean and the one overall std towards a batch of training codes'."""
        if not self.standardize_codes or len(z) < 2:
            return
        z = z.to(self.code_mean.dtype)  # mixed precision: bf16 or fp16 codes
        mean, std = z.mean(0), z.std(0)
        std = std.square().mean().sqrt().expand_as(std).clamp_min(1e-8)
        if not self.code_stats_seen:
            self.code_mean.copy_(mean)
            self.code_std.copy_(std)
            self.code_stats_seen.fill_(True)
        else:
            self.code_mean.lerp_(mean, self.code_momentum)
            self.code_std.lerp_(std, self.code_momentum)

    def prior_sample(self, n: int, generator: torch.Generator | None = None, category: int | Tensor | None = None) -> Tensor:
        return self.generate(*self.sample_codes(n, category, generator=generator))

    def cluster_logits(self, x: Tensor) -> Tensor:
        """Q's categorical logits (B, K) for the first categorical code on Enc(x)."""
        return self.discriminator(self.to_gan_space(self.encode(x)))[1][0]

    def cluster_probs(self, x: Tensor) -> Tensor:
        """softmax(Q_cat(Enc(x))) (B, K): the paper's unsupervised classifier takes its argmax."""
        return self.cluster_logits(x).softmax(-1)

    @torch.no_grad()
    def restart_probs(self, x: Tensor) -> list[Tensor]:
        """Q's categorical distribution (B, K) on Enc(x) for every restart; ``gans.kept`` is the one in use."""
        return list(self.discriminator(self.gans.each(self.to_gan_space(self.encode(x))))[1][0].softmax(-1))

    @torch.no_grad()
    def match_categories(self, images: Tensor, labels: Tensor, batch_size: int = 256) -> Tensor:
        """Match categories to classes one-to-one (Hungarian, on labelled images) for ``sample_conditional``.

        Returns and stores ``class_categories`` (num_classes,): the category of each class (-1 for a
        class left unmatched when there are fewer categories than classes).
        """
        clusters = torch.cat([self.cluster_probs(x.to(self.device)).argmax(1).cpu() for x in images.split(batch_size)])
        table = contingency(clusters, labels, self.num_categories, len(self.class_categories))
        categories, classes = linear_sum_assignment(table, maximize=True)
        self.class_categories.fill_(-1)
        self.class_categories[torch.as_tensor(classes)] = torch.as_tensor(categories, device=self.device)
        return self.class_categories

    @torch.no_grad()
    def sample_conditional(self, n: int, classes: Tensor | int, generator: torch.Generator | None = None) -> Tensor | None:
        """Images of the given classes, generated with their matched categories (see ``match_categories``,
        run on the validation split after every validation epoch); None before any match."""
        classes = torch.as_tensor(classes, device=self.class_categories.device).long().expand(n)
        if not len(self.class_categories) or int(self.class_categories[classes].min()) < 0:
            return None
        return self.sample(n, generator, category=self.class_categories[classes])

    @torch.no_grad()
    def traversal(
        self,
        x: Tensor | None = None,
        steps: int = 10,
        span: float | None = None,
        code: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The paper's Figures 2-4: one row per category of the first categorical code, columns
        sweeping continuous code ``code`` (default 0) over [-span, span] (default 1.5); each row has
        its own noise P, the other codes fixed. Without continuous codes the columns vary P (Fig. 2).
        ``x`` is not used: the sheet shows G's codes.
        """
        if steps < 2:
            raise ValueError(f"a traversal needs at least 2 steps, got {steps}")
        code = 0 if code is None else code
        if self.num_continuous and not 0 <= code < self.num_continuous:
            raise ValueError(f"continuous code {code} does not exist: the model has {self.num_continuous}")
        k = self.num_categories
        rows = torch.arange(k, device=self.device).repeat_interleave(steps)
        noise, cats, u = self.sample_codes(k, torch.arange(k), generator=generator)
        noise, cats, u = (t.repeat_interleave(steps, 0) for t in (noise, cats, u))
        if self.num_continuous:
            u = torch.zeros_like(u)
            span = 1.5 if span is None else span
            u[:, code] = torch.linspace(-span, span, steps, device=self.device).repeat(k)
        else:
            noise, _, _ = self.sample_codes(k * steps, generator=generator)
        cats[:, 0] = rows
        return self.decode(self.generate(noise, cats, u)).contiguous().unflatten(0, (k, steps))

    # ----------------------------------------------------------------- training
    def optimizer_groups(self):
        # one Adam per player over every restart: their losses are summed (``Restarts.total``), so
        # each restart's parameters get their own gradients and Adam statistics, as if trained alone
        return {
            "autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
            "discriminator": (self.gans.discriminators.parameters(), {"lr": self.gan_lr}),
            "generator": (self.gans.generators.parameters(), {"lr": self.gan_lr}),
        }

    def gan_inputs(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """Training draws of (P, c, u) from this rank's noise generator, (restarts, n, ...): each
        restart has its own."""
        return self.draw_codes((self.restarts, n), self.noise, self.device)

    def noisy_labels(self, logits: Tensor, real: bool) -> Tensor:
        """D's targets for ``logits``: 1 - label_smoothing for real, 0 for fake, each flipped with
        probability label_flip."""
        target = torch.full(logits.shape, 1.0 - self.label_smoothing if real else 0.0, device=logits.device)
        if self.label_flip:
            flip = torch.rand(logits.shape, generator=self.noise, device=logits.device) < self.label_flip
            target = torch.where(flip, 1.0 - target, target)
        return target

    def information(self, cat_logits: list[Tensor], c: Tensor, u_pred: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """L_I: lambda_disc * CE(c) + lambda_cont * MSE(u) on Q's outputs for G's codes and G's inputs
        (any leading dimensions); returns (L_I, CE(c))."""
        ce, mse = information_loss([lg.flatten(0, -2) for lg in cat_logits], c.flatten(0, -2), u_pred.flatten(0, -2),
                                   u.flatten(0, -2))
        return self.lambda_disc * ce + self.lambda_cont * mse, ce

    def discriminator_phase(self, codes: Tensor) -> dict[str, Tensor]:
        """D maximises V(D, G) (Eq. 2, noisy labels); D and Q minimise L_I on G's codes (Eq. 3)."""
        real = self.gans.each(self.to_gan_space(codes))
        with self.phase("discriminator") as update:
            p, c, u = self.gan_inputs(len(codes))
            fake = self.gan_codes(p, c, u).detach()
            logits, cats, u_out = self.discriminator(torch.cat([real, fake], dim=-2))  # one pass on both
            (real_logit, fake_logit), (_, u_pred) = logits.chunk(2, -1), u_out.chunk(2, -2)
            real_cats, cat_logits = zip(*(logit.chunk(2, -2) for logit in cats))
            v = 0.5 * (F.binary_cross_entropy_with_logits(real_logit, self.noisy_labels(real_logit, True))
                       + F.binary_cross_entropy_with_logits(fake_logit, self.noisy_labels(fake_logit, False)))
            info, ce = self.information(cat_logits, c, u_pred, u)
            update(self.gans.total(v + info))
            self.gans.record(real_cats[0].detach())
        return {"disc": v.detach(), "q_ce": ce.detach()}

    def generator_phase(self, n: int) -> dict[str, Tensor]:
        """G fools D (Eq. 2, non-saturating) and minimises the same L_I (Eq. 3)."""
        with self.phase("generator") as update:
            p, c, u = self.gan_inputs(n)
            fake_logit, cat_logits, u_pred = self.discriminator(self.gan_codes(p, c, u))
            g = adversarial_loss(fake_logit, real=True)
            info, _ = self.information(cat_logits, c, u_pred, u)
            update(self.gans.total(g + info))
        return {"gen": g.detach(), "info": info.detach()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = self.reconstruction_phase(x)  # Eq. 1
        if self.current_epoch < self.ae_epochs:
            return losses
        with torch.no_grad():
            codes = self.encode(x)  # real codes for D: detached, the AE learns from reconstruction only
        self.update_code_stats(codes)
        for _ in range(self.gan_steps):
            gan = {**self.discriminator_phase(codes), **self.generator_phase(len(x))}
        return {**losses, **gan}

    # ----------------------------------------------------------------- restarts and categories
    def sum_over_processes(self) -> Reduce | None:
        """Adds a tensor up over every process under DDP (None in a single process)."""
        single = self._trainer is None or self.trainer.world_size == 1
        return None if single else lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        # keep the most informative restart before validation, so the checkpoints written after it use it
        if self.trainer.state.fn == "fit" and not self.trainer.sanity_checking:
            self.gans.keep_most_informative(self.sum_over_processes())

    def on_validation_epoch_end(self) -> None:
        datamodule = self.trainer.datamodule
        if len(self.class_categories) and datamodule is not None and not self.trainer.sanity_checking:
            images, labels = datamodule.tensors("val")
            classes = datamodule.class_labels(labels)
            if classes is not None and len(classes):
                self.match_categories(images, classes)

    def on_train_epoch_end(self) -> None:
        information = self.gans.keep_most_informative(self.sum_over_processes())
        if information is not None:
            self.log_dict({"train/kept_restart": self.gans.kept.float(), "train/cluster_information": information.max()})
        self.gans.end_epoch()

    def training_state(self) -> dict[str, Any]:
        return self.gans.training_state()

    def load_training_state(self, state: dict[str, Any], mid_epoch: bool) -> None:
        self.gans.load_training_state(state, mid_epoch)
