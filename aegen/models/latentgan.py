"""LatentGAN autoencoder (Kalwar, Aich & Dixit): an InfoGAN that learns an autoencoder's code distribution.

A deterministic autoencoder learns codes z = Enc(X) with the pixel MSE (Eq. 1). A GAN in latent
space learns their distribution: the generator G maps Gaussian noise P, categorical codes
c ~ Cat(K) and continuous codes u ~ U(-1, 1) to a code; the discriminator D separates Enc(X)
(real) from G(P, c, u) (fake) (Eq. 2); Q shares D's trunk and recovers c and u from G's codes,
InfoGAN's variational bound on I(c; G(P, c)) (Eq. 3). Each minibatch runs three phases in order:

1. ``reconstruction_phase``: Enc and Dec minimise ||X - Dec(Enc(X))||^2.
2. ``discriminator_phase``: D maximises V(D, G) with noisy labels; D and Q (the shared trunk and
   Q's heads) minimise lambda_disc * CE(c) + lambda_cont * MSE(u) on G's codes.
3. ``generator_phase``: G fools D and minimises the same information loss.

(The information term updates both players, as in InfoGAN's reference code.) Enc(X) is detached
in the GAN, so the autoencoder learns from reconstruction only. Samples decode G(P, c, u);
clusters are argmax Q_cat(Enc(X)), the paper's unsupervised classifier.

Settings (``preset``): the paper's Table 2 (``mnist``, 1x32x32), Table 3 (``chairs``, 64x64) and
Table 4 (``celeba``, 3x32x32), or the default ``generic``: Table 2's autoencoder (64-d code) scaled
to any supported image size and channel count (``table2_widths``: Table 2 itself at 32 px), with a
latent GAN sized for short CPU runs (16-d noise, 256-256 MLPs, lambda_disc 1, 16 GAN updates per
minibatch and 16 restarts, trained side by side in batched matmuls), and Adam at 1e-3 for every
player (the paper's 2e-4 leaves the codes moving under the latent GAN for the whole of a short
run); ``conv`` is the same latent GAN (8 updates per minibatch, autoencoder at 2e-4) on aegen.nets'
batch-normalised conv autoencoder with a 16-d code. Every size and rate a preset fixes can be
overridden by its own option. Beyond the paper, options:
``restarts`` trains several latent GANs side by side on the same codes and keeps the one whose Q
is most informative about the real codes (a label-free choice, like k-means' ``n_init``: InfoGAN's
clusters vary a lot with the seed; paper presets: 1);
``standardize_codes`` (on by default) runs the latent GAN on centred codes divided by one overall
std, because the decoder's batch norm leaves the code scale arbitrary (a few hundredths with the
Table 2 nets on digits, which starved D and Q);
``gan_steps``/``gan_lr``; ``sample_conditional`` maps categories to classes by
Hungarian matching on the validation split.

Choices where the paper is silent or inconsistent: the decoder's final conv has one
channel per image channel (Table 2 prints 3 for MNIST); Table 3's batch-norm widths are typos for
the conv widths; the chairs preset has 2 continuous codes, as Table 3's G input (190 =
128 + 3 x 20 + 2) and Q head ("fc-o2") say, although the text mentions one; noisy labels are
one-sided label smoothing plus a small label-flip rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scipy.optimize import linear_sum_assignment

from aegen.losses import adversarial_loss, information_loss
from aegen.metrics.clustering import contingency
from aegen.models.base import GenerativeAE
from aegen.models.info_codes import InfoCodes
from aegen.nets import ConvDecoder, ConvEncoder, EnsembleLinear, EnsembleMLP
from aegen.registry import register_model



@dataclass(frozen=True)
class Preset:
    """One of the paper's settings: architecture and latent-GAN sizes."""

    encoder: tuple[int, ...] | None  # channels of the k4 s2 convs (None: Table 2's, scaled by size and `width`)
    decoder: tuple[int, ...] | None  # channels of the upsample + conv3 + BN blocks (None: likewise)
    latent_dim: int | None  # None: the base class's default
    noise_dim: int | None  # None: latent_dim
    num_categorical: int
    num_categories: int
    num_continuous: int
    disc_hidden: tuple[int, ...]
    gen_hidden: tuple[int, ...]
    lambda_disc: float
    lambda_cont: float
    gan_steps: int = 1
    gan_lr: float | None = None  # None: lr
    restarts: int = 1
    lr: float = 2e-4  # the autoencoder's (and, without gan_lr, the latent GAN's) Adam learning rate
    conv_nets: bool = False  # aegen.nets' ConvEncoder/ConvDecoder (with `width`) instead of the paper's nets


PRESETS = {
    # Table 2: MNIST 1x32x32; G input 64 + 10 + 2 = 76; lambda_cont 1, lambda_disc 0.1
    "mnist": Preset((16, 32, 64, 128, 128), (128, 64, 32), 64, 64, 1, 10, 2, (1000, 1000, 512), (1000, 1000, 1000), 0.1, 1.0),
    # Table 3: 3D chairs 1x64x64; 3 x Cat(20) + 2 continuous, G input 190; lambda_disc 10
    "chairs": Preset((64, 128, 256, 512, 1024, 128), (512, 256, 128, 64), 128, 128, 3, 20, 2, (3000, 3000, 3000, 512),
                     (3000, 3000, 3000, 3000), 10.0, 1.0),
    # Table 4: CelebA 3x32x32; 10 x Cat(10), no continuous code, G input 228; lambda_disc 1
    "celeba": Preset((64, 128, 256, 512, 128), (512, 256, 128), 128, 128, 10, 10, 0, (3000, 3000, 3000, 512),
                     (3000, 3000, 3000, 3000), 1.0, 1.0),
    # any image size and channel count, CPU-friendly: Table 2's nets scaled to the image size (Table 2
    # itself at 32 px), a 64-d code, and a small latent GAN: 16-d noise, lambda_disc 1, 16 GAN updates
    # per minibatch, and 16 latent GANs side by side, keeping the one whose Q has the most information on
    # Enc(X); Adam at 1e-3 for all (tuned on digits and 5,000 MNIST digits, experiments/README.md)
    "generic": Preset(None, None, 64, 16, 1, 10, 2, (256, 256), (256, 256), 1.0, 1.0, gan_steps=16, gan_lr=1e-3,
                      restarts=16, lr=1e-3),
    # the same latent GAN on aegen.nets' conv autoencoder (batch norm, LeakyReLU) with a 16-d code
    "conv": Preset(None, None, None, 16, 1, 10, 2, (256, 256), (256, 256), 1.0, 1.0, gan_steps=8, gan_lr=1e-3,
                   restarts=16, conv_nets=True),
}


def table2_widths(size: int, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Table 2's encoder and decoder channels for any power-of-two image size: k4 s2 convs down to
    1x1 (width / 2, width, ..., at most 4 x width), then decoder blocks from 4x4 up (..., 2 x width,
    width). At 32 px and width 32: exactly Table 2, (16, 32, 64, 128, 128) and (128, 64, 32)."""
    levels = int(math.log2(size))
    encoder = tuple(min(max(width // 2, 1) * 2**i, 4 * width) for i in range(levels))
    decoder = tuple(min(width * 2**i, 4 * width) for i in reversed(range(levels - 2)))
    return encoder, decoder


class StridedConvEncoder(nn.Sequential):
    """The paper's encoder: 4x4 stride-2 convs with ReLU ("c4-oN-s2-r"), then a linear layer to the code."""

    def __init__(self, img_shape: tuple[int, int, int], channels: tuple[int, ...], out_dim: int) -> None:
        c, size, _ = img_shape
        if size % 2 ** len(channels):
            raise ValueError(f"{len(channels)} stride-2 convs need an image size divisible by {2 ** len(channels)}, got {size}")
        layers: list[nn.Module] = []
        for w in channels:
            layers += [nn.Conv2d(c, w, 4, 2, 1), nn.ReLU()]
            c = w
        side = size // 2 ** len(channels)
        super().__init__(*layers, nn.Flatten(), nn.Linear(c * side * side, out_dim))


class UpsampleConvDecoder(nn.Sequential):
    """The paper's decoder: ReLU, the code as a 1x1 map upsampled x4, then conv3 + BN + ReLU blocks
    each after a x2 bilinear upsample ("u2-c3-oN-p1-bnN-r"), a final conv3 to the image and tanh."""

    def __init__(self, img_shape: tuple[int, int, int], channels: tuple[int, ...], in_dim: int) -> None:
        out_channels, size, _ = img_shape
        if size != 4 * 2 ** len(channels):
            raise ValueError(f"a decoder with {len(channels)} blocks makes {4 * 2 ** len(channels)} px images, not {size}")
        layers: list[nn.Module] = [nn.ReLU(), nn.Unflatten(1, (in_dim, 1, 1)), nn.Upsample(scale_factor=4, mode="bilinear")]
        c = in_dim
        for i, w in enumerate(channels):
            if i:
                layers.append(nn.Upsample(scale_factor=2, mode="bilinear"))
            layers += [nn.Conv2d(c, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        layers += [nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(c, out_channels, 3, 1, 1), nn.Tanh()]
        super().__init__(*layers)


class DiscriminatorQ(nn.Module):
    """D and Q on codes, for every restart side by side: a shared ReLU MLP trunk, then one linear
    layer to a real/fake logit, K logits per categorical code and one output per continuous code
    (Table 2, column 3: "fc-o1-sig, fc-o2, fc-o10")."""

    def __init__(self, latent_dim: int, hidden: tuple[int, ...], num_categorical: int, num_categories: int,
                 num_continuous: int, restarts: int = 1) -> None:
        super().__init__()
        self.trunk = EnsembleMLP(restarts, latent_dim, hidden[:-1], hidden[-1])
        self.sizes = [1, num_categorical * num_categories, num_continuous]  # the heads' output sections
        self.heads = EnsembleLinear(restarts, hidden[-1], sum(self.sizes))
        self.num_categories = num_categories

    def forward(self, z: Tensor, member: int | None = None) -> tuple[Tensor, list[Tensor], Tensor]:
        """Codes (restarts, B, D), or (B, D) for restart ``member`` -> (real/fake logits (..., B),
        categorical logits [(..., B, K)...], continuous (..., B, L))."""
        out = self.heads(F.relu(self.trunk(z, member)), member)
        logit, cats, u = out.split(self.sizes, -1)
        return logit.squeeze(-1), list(cats.split(self.num_categories, -1)), u


@register_model("latentgan")
class LatentGAN(InfoCodes, GenerativeAE):
    """LatentGAN autoencoder: an InfoGAN in the latent space of an MSE autoencoder; clusters = Q's category."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        preset: str = "generic",
        latent_dim: int | None = None,
        noise_dim: int | None = None,
        num_categorical: int | None = None,
        num_categories: int | None = None,
        num_continuous: int | None = None,
        continuous_range: float = 1.0,
        lambda_disc: float | None = None,
        lambda_cont: float | None = None,
        disc_hidden: tuple[int, ...] | None = None,
        gen_hidden: tuple[int, ...] | None = None,
        label_smoothing: float = 0.1,
        label_flip: float = 0.05,
        standardize_codes: bool = True,
        code_momentum: float = 0.02,
        gan_steps: int | None = None,
        gan_lr: float | None = None,
        restarts: int | None = None,
        ae_epochs: int = 0,
        lr: float | None = None,
        betas: tuple[float, float] = (0.5, 0.9),
        **kwargs,
    ) -> None:
        """
        Args:
            preset: ``generic`` (default: Table 2's nets scaled to any image size by ``width``, a
                small latent GAN with several faster updates per minibatch and restarts, for
                CPU-length runs), ``conv`` (the same latent GAN on aegen.nets' conv nets), or the
                paper's settings: ``mnist`` (Table 2, 32x32), ``chairs`` (Table 3, 64x64),
                ``celeba`` (Table 4, 32x32). Options left unset (None) take the preset's value.
            latent_dim: size of the autoencoder's code (mnist/generic 64, chairs/celeba 128, conv 16).
            noise_dim: size of G's Gaussian noise P (mnist 64, chairs/celeba 128, generic/conv 16).
            num_categorical: number of categorical codes (mnist 1, chairs 3, celeba 10); the first
                one is the cluster head.
            num_categories: K, the categories of each categorical code (mnist 10, chairs 20).
            num_continuous: number of continuous codes u (mnist 2, chairs 2, celeba 0).
            continuous_range: u ~ U(-range, range) (paper: 1).
            lambda_disc: weight of Q's categorical cross-entropy (mnist 0.1, chairs 10, celeba 1, generic/conv 1).
            lambda_cont: weight of Q's continuous squared error (paper: 1).
            disc_hidden: hidden sizes of the D/Q trunk MLP (mnist 1000-1000-512, chairs/celeba
                3000-3000-3000-512, generic/conv 256-256).
            gen_hidden: hidden sizes of G's MLP (mnist 1000-1000-1000, chairs/celeba 3000 x 4, generic/conv 256-256).
            label_smoothing: D's target for real codes is 1 - label_smoothing (0: hard labels).
            label_flip: probability that each of D's labels is flipped (0: none). Noisy labels for D
                help, the paper says; it does not say which kind.
            standardize_codes: run the latent GAN on standardised codes (Enc(X) - mean) / std, with a
                running per-dimension mean and one std for all dimensions (the root mean variance,
                which keeps the code's shape: Table 2's decoder starts with a ReLU, so dimensions
                the encoder keeps negative carry nothing the decoder uses, and scaling each by its
                own std would blow them up to the size of the informative ones); G's codes are
                mapped back before decoding. The decoder's batch norm makes the code scale
                arbitrary (a few hundredths on digits), which starves D and Q. False: the paper's
                raw codes.
            code_momentum: update rate of the running code mean and std.
            gan_steps: discriminator + generator updates per minibatch, all on that minibatch's codes
                (paper presets: 1; generic: 16; conv: 8). More lets the latent GAN converge on small datasets
                and short runs.
            gan_lr: Adam learning rate of G and D/Q (paper presets: lr; generic/conv: 1e-3).
            restarts: latent GANs (G and D/Q) trained side by side on the same codes, each from its own
                initialisation and noise (paper presets: 1; generic/conv: 16, run in batched matmuls at
                about the cost of 8 separate ones). After every training epoch the one whose Q carries
                the most information about the real codes is kept for clusters and samples: the
                largest I(X; c) = H(E[Q(c|z)]) - E[H(Q(c|z))] over that epoch's Enc(X), a label-free criterion (confident and balanced clusters), as k-means
                keeps the best of its ``n_init`` starts. InfoGAN's clusters vary a lot with the seed.
            ae_epochs: train the autoencoder alone for this many epochs before the latent GAN starts
                (paper: 0, both from the start), so the GAN does not chase codes that still move.
            lr: Adam learning rate of the autoencoder, and of G and D/Q unless ``gan_lr`` is set (paper
                presets and conv: 2e-4; generic: 1e-3, so that the codes settle within a short run).
            betas: Adam betas (paper: 0.5, 0.9).
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        pick = lambda value, default: default if value is None else value  # noqa: E731
        code_dim = pick(latent_dim, p.latent_dim)
        lr = pick(lr, p.lr)
        super().__init__(**({} if code_dim is None else {"latent_dim": code_dim}), lr=lr, betas=betas, **kwargs)
        self.hparams["lr"] = lr  # the optimisers and checkpoints use the resolved rate (the CLI records the given None)
        self.preset = preset
        self.noise_dim = pick(noise_dim, pick(p.noise_dim, self.latent_dim))
        self.num_categorical = pick(num_categorical, p.num_categorical)
        self.num_categories = pick(num_categories, p.num_categories)
        self.num_continuous = pick(num_continuous, p.num_continuous)
        self.continuous_range = continuous_range
        self.lambda_disc = pick(lambda_disc, p.lambda_disc)
        self.lambda_cont = pick(lambda_cont, p.lambda_cont)
        for option, value, low in (("noise_dim", self.noise_dim, 0), ("num_categorical", self.num_categorical, 1),
                                   ("num_categories", self.num_categories, 2), ("num_continuous", self.num_continuous, 0)):
            if value < low:
                raise ValueError(f"{option} must be at least {low}, got {value}")
        if not (0 <= label_smoothing < 0.5 and 0 <= label_flip < 0.5):
            raise ValueError("label_smoothing and label_flip must be in [0, 0.5)")
        if continuous_range <= 0 or self.lambda_disc < 0 or self.lambda_cont < 0:
            raise ValueError("continuous_range must be positive and the lambdas non-negative")
        self.label_smoothing, self.label_flip = label_smoothing, label_flip
        if not 0 < code_momentum <= 1:
            raise ValueError(f"code_momentum must be in (0, 1], got {code_momentum}")
        self.standardize_codes, self.code_momentum = standardize_codes, code_momentum
        self.gan_steps, self.gan_lr = pick(gan_steps, p.gan_steps), pick(gan_lr, pick(p.gan_lr, lr))
        if ae_epochs < 0:
            raise ValueError(f"ae_epochs must be >= 0, got {ae_epochs}")
        self.ae_epochs = ae_epochs
        self.restarts = pick(restarts, p.restarts)
        if self.restarts < 1:
            raise ValueError(f"restarts must be at least 1, got {self.restarts}")
        if self.gan_steps < 1 or self.gan_lr <= 0:
            raise ValueError(f"gan_steps must be at least 1 and gan_lr positive, got {self.gan_steps}, {self.gan_lr}")
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))
        self.register_buffer("code_std", torch.ones(self.latent_dim))
        self.register_buffer("code_stats_seen", torch.tensor(False))
        # category of the first categorical code matched to each data class (-1: not matched yet)
        self.register_buffer("class_categories", torch.full((self.hparams.num_classes or 0,), -1, dtype=torch.long))

        shape, width = self.img_shape, self.hparams.width
        if p.decoder is not None and shape[1] != 4 * 2 ** len(p.decoder):
            size = 4 * 2 ** len(p.decoder)
            raise ValueError(f"preset {preset!r} is the paper's architecture for {size}x{size} images, got "
                             f"{shape[1]}x{shape[2]}; use --model.preset generic or --data.image_size {size}")
        if p.conv_nets:
            self.encoder = ConvEncoder(shape, self.latent_dim, width=width)
            self.decoder = ConvDecoder(shape, self.latent_dim, width=width)
        else:
            encoder, decoder = (p.encoder, p.decoder) if p.encoder is not None else table2_widths(shape[1], width)
            self.encoder = StridedConvEncoder(shape, encoder, self.latent_dim)
            self.decoder = UpsampleConvDecoder(shape, decoder, self.latent_dim)
        gen_in = self.noise_dim + self.num_categorical * self.num_categories + self.num_continuous
        # every restart's G and D/Q side by side, in batched matmuls (see ``restarts``)
        self.generators = EnsembleMLP(self.restarts, gen_in, tuple(pick(gen_hidden, p.gen_hidden)), self.latent_dim)
        self.discriminators = DiscriminatorQ(self.latent_dim, tuple(pick(disc_hidden, p.disc_hidden)), self.num_categorical,
                                             self.num_categories, self.num_continuous, self.restarts)
        # the kept latent GAN, and this epoch's sums of Q(c|Enc(X)) and of its entropy per restart (a
        # plain tensor, not a buffer: DDP would overwrite every process's sums with rank 0's)
        self.register_buffer("kept", torch.tensor(0))
        self.q_sums: Tensor | None = None

    def discriminator(self, z: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """D/Q of the kept latent GAN (see ``restarts``) on codes (B, D) in the GAN's space."""
        return self.discriminators(z, int(self.kept))

    # ----------------------------------------------------------------- the latent GAN
    # G's inputs (``sample_codes``, from InfoCodes): noise P (n, noise_dim), categories c
    # (n, num_categorical) and continuous codes u (n, num_continuous)
    def generate(self, noise: Tensor, categories: Tensor, continuous: Tensor) -> Tensor:
        """G(P, c, u) as an autoencoder code (B, latent_dim), from noise, category indices
        (B, num_categorical) and continuous codes (B, num_continuous)."""
        return self.from_gan_space(self.gan_codes(noise, categories, continuous))

    def gan_codes(self, noise: Tensor, categories: Tensor, continuous: Tensor) -> Tensor:
        """G's output, in the space D sees (standardised codes when ``standardize_codes``): the kept
        restart's on inputs (B, ...), or every restart's on inputs (restarts, B, ...)."""
        onehot = F.one_hot(categories, self.num_categories).flatten(-2).to(noise.dtype)
        member = int(self.kept) if noise.dim() == 2 else None
        return self.generators(torch.cat([noise, onehot, continuous], dim=-1), member)

    def to_gan_space(self, z: Tensor) -> Tensor:
        """Autoencoder codes -> the latent GAN's space: standardised, or unchanged (paper)."""
        return (z - self.code_mean) / self.code_std if self.standardize_codes else z

    def from_gan_space(self, z: Tensor) -> Tensor:
        """The inverse of ``to_gan_space``."""
        return z * self.code_std + self.code_mean if self.standardize_codes else z

    @torch.no_grad()
    def update_code_stats(self, z: Tensor) -> None:
        """Move the running per-dimension mean and the one overall std towards those of a batch of
        training codes."""
        if not self.standardize_codes or len(z) < 2:
            return
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

    @torch.no_grad()
    def restart_probs(self, x: Tensor) -> list[Tensor]:
        """Q's categorical distribution (B, K) on Enc(x) for every restart; ``kept`` is the one in use."""
        z = self.to_gan_space(self.encode(x))
        return list(self.discriminators(z.expand(self.restarts, *z.shape))[1][0].softmax(-1))

    def cluster_probs(self, x: Tensor) -> Tensor:
        """softmax(Q_cat(Enc(x))) (B, K): the paper's unsupervised classifier takes its argmax."""
        return self.cluster_logits(x).softmax(-1)

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

    def on_validation_epoch_end(self) -> None:
        datamodule = self.trainer.datamodule
        if len(self.class_categories) and datamodule is not None and not self.trainer.sanity_checking:
            images, labels = datamodule.tensors("val")
            classes = datamodule.class_labels(labels)
            if classes is not None and len(classes):
                self.match_categories(images, classes)

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
            values = torch.linspace(-1.5 if span is None else -span, 1.5 if span is None else span, steps,
                                    device=self.device)
            u[:, code] = values.repeat(k)
        else:
            noise, _, _ = self.sample_codes(k * steps, generator=generator)
        cats[:, 0] = rows
        return self.decode(self.generate(noise, cats, u)).unflatten(0, (k, steps))

    # ----------------------------------------------------------------- training
    def optimizer_groups(self):
        # one Adam per player over every restart: their losses are summed, so each restart's
        # parameters get their own gradients and Adam statistics, as if trained alone
        return {
            "autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
            "discriminator": (self.discriminators.parameters(), {"lr": self.gan_lr}),
            "generator": (self.generators.parameters(), {"lr": self.gan_lr}),
        }

    def noisy_labels(self, n: int, real: bool) -> Tensor:
        """D's targets for every restart (restarts, n): 1 - label_smoothing for real, 0 for fake, each
        flipped with probability label_flip."""
        shape = (self.restarts, n)
        target = torch.full(shape, 1.0 - self.label_smoothing if real else 0.0, device=self.device)
        if self.label_flip:
            flip = torch.rand(shape, generator=self.noise, device=self.device) < self.label_flip
            target = torch.where(flip, 1.0 - target, target)
        return target

    def latent_gan_inputs(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """Training draws of (P, c, u) from this rank's noise generator, for every restart (restarts, n, ...)."""
        return self.draw_codes((self.restarts, n), self.noise, self.device)

    def information(self, cat_logits: list[Tensor], c: Tensor, u_pred: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """lambda-weighted InfoGAN loss, summed over restarts, on Q's outputs and G's inputs (restarts,
        B, ...): (lambda_disc * CE(c) + lambda_cont * MSE(u), CE(c)), each a sum of per-restart means."""
        ce, mse = information_loss([lg.flatten(0, 1) for lg in cat_logits], c.flatten(0, 1), u_pred.flatten(0, 1),
                                   u.flatten(0, 1))
        return self.restarts * (self.lambda_disc * ce + self.lambda_cont * mse), self.restarts * ce

    def discriminator_phase(self, codes: Tensor) -> dict[str, Tensor]:
        """D maximises V(D, G) with noisy labels; D and Q minimise the information loss on G's codes
        (every restart, each with its own draws; the losses are sums over restarts, so each restart
        gets the gradients it would get alone)."""
        real = self.to_gan_space(codes).expand(self.restarts, *codes.shape)
        n, r = len(codes), self.restarts
        with self.phase("discriminator") as update:
            noise, c, u = self.latent_gan_inputs(n)
            fake = self.gan_codes(noise, c, u).detach()
            real_logit, real_cats, _ = self.discriminators(real)
            fake_logit, cat_logits, u_pred = self.discriminators(fake)
            d_loss = r * 0.5 * (F.binary_cross_entropy_with_logits(real_logit, self.noisy_labels(n, True))
                                + F.binary_cross_entropy_with_logits(fake_logit, self.noisy_labels(n, False)))
            info, ce = self.information(cat_logits, c, u_pred, u)
            update(d_loss + info)
            self.record_clusters(real_cats[0].detach())
        return {"disc": d_loss.detach() / r, "q_ce": ce.detach() / r}

    def generator_phase(self, n: int) -> dict[str, Tensor]:
        """G fools D and minimises the same information loss (every restart)."""
        r = self.restarts
        with self.phase("generator") as update:
            noise, c, u = self.latent_gan_inputs(n)
            fake_logit, cat_logits, u_pred = self.discriminators(self.gan_codes(noise, c, u))
            g_loss = r * adversarial_loss(fake_logit, real=True)
            info, _ = self.information(cat_logits, c, u_pred, u)
            update(g_loss + info)
        return {"gen": g_loss.detach() / r, "info": info.detach() / r}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = self.reconstruction_phase(x)
        if self.current_epoch < self.ae_epochs:
            return losses
        with torch.no_grad():
            codes = self.encode(x)  # real codes for D: detached, the AE learns from reconstruction only
        self.update_code_stats(codes)
        for _ in range(self.gan_steps):
            gan = {**self.discriminator_phase(codes), **self.generator_phase(len(x))}
        return {**losses, **gan}

    # ----------------------------------------------------------------- restarts
    @torch.no_grad()
    def record_clusters(self, logits: Tensor) -> None:
        """Add every restart's Q categorical distribution on a batch of real codes (logits (restarts, B,
        K)) to this epoch's sums: per category, then the entropy, then the count."""
        if self.restarts == 1:
            return
        probs = logits.float().softmax(-1)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        sums = torch.cat([probs.sum(1), entropy.sum(1, keepdim=True), entropy.new_full((self.restarts, 1), probs.shape[1])], 1)
        self.q_sums = sums if self.q_sums is None else self.q_sums + sums

    @torch.no_grad()
    def cluster_information(self) -> Tensor | None:
        """I(X; c) of each restart's Q on this epoch's real codes, summed over every process:
        H(E[Q(c|z)]) - E[H(Q(c|z))] (restarts,); None before any record."""
        if self.q_sums is None:
            return None
        sums = self.q_sums
        if self._trainer is not None and self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums.clone(), reduce_op="sum")
        count = sums[:, -1:]
        mean = sums[:, :-2] / count
        return -(mean * mean.clamp_min(1e-12).log()).sum(-1) - sums[:, -2] / count[:, 0]

    def keep_most_informative(self) -> Tensor | None:
        """Keep the restart with the largest ``cluster_information`` (before validation, so the
        checkpoints written after it use it, and at the end of every training epoch)."""
        information = self.cluster_information()
        if information is not None:
            self.kept.fill_(int(information.argmax()))
        return information

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        if self.trainer.state.fn == "fit" and not self.trainer.sanity_checking:
            self.keep_most_informative()

    def on_train_epoch_end(self) -> None:
        information = self.keep_most_informative()
        if information is not None:
            self.log_dict({"train/kept_restart": self.kept.float(), "train/cluster_information": information.max()})
        self.q_sums = None

    def training_state(self) -> dict[str, Any]:
        return {"q_sums": self.q_sums}

    def load_training_state(self, state: dict[str, Any], mid_epoch: bool) -> None:
        # the Q sums are per epoch: a checkpoint written at an epoch's end starts the next from zero
        self.q_sums = state.get("q_sums") if mid_epoch else None
