"""AAE with a learned prior (Wang, Peng & Ko 2020, "Learning priors for adversarial autoencoders").

A code generator CG turns simple noise (plus a label or condition s) into the prior the encoder is
regularised towards, and learns that prior adversarially in image space. Networks: encoder Enc,
decoder Dec, CG (MLP), latent discriminator D_C (MLP 1000-500-200, LeakyReLU) and image
discriminator D_I (convs 64-128-256, k4 s2, BN, LeakyReLU, fc 1000) with a Q head sharing its
trunk. Each minibatch runs the paper's two phases in order:

1. ``aae_phase`` (CG fixed, Fig. 3b): D_C learns CG(z, s) = real, Enc(x) = fake (Eq. 5; Eq. 8 with
   s given to D_C when supervised); then Enc and Dec minimise the perceptual loss
   ||F(Dec(Enc(x))) - F(x)||^2 with F = D_I's last conv features (Eq. 6) while Enc fools D_C.
2. ``prior_improvement_phase`` (Fig. 3a): D_I learns x = real, Dec(CG(z, s)) = fake and
   Dec(Enc(x)) = fake (Eq. 4), its Q head the information term CE(Q(Dec(CG(z, s))), s) (Eq. 7);
   then CG and Dec fool D_I and minimise the same information term; Q's head is updated with them
   (InfoGAN's practice: the term trains both players).

The paper's Algorithm 1 never updates CG in the prior-improvement phase, while the text ("we update
the code generator with the loss function in Eq. (4)") and Fig. 3 do: we follow the text, and update
CG and the decoder jointly (footnote 2: updating the decoder here helps convergence).

Settings (``setting``, each a condition class of ``aegen.models.codegen_conditions`` that says
what s is): ``unsupervised`` (s ~ Cat(``categories``) drawn at random, D_C label-free; 10 + 90
noise -> 64-d code), ``supervised`` (s = the image's label, fed to CG and D_C; 10 + 54 -> 64) and
``conditional`` (any per-image vector in place of the label: CelebA's 40 attributes, fonts
factors, a text embedding; the paper's text-to-image use). The supervised class is the batch label
when it is a class index (B,); for factor labels (B, K) it is the datamodule's ``class_labels``
(fonts: the letter) or the column ``label_column``.

Ablation switches (the paper's Table 3): ``learned_prior`` (off: plain Gaussian codes N(0, I), or
[one-hot s, Gaussian noise] when conditioned, as the paper's AAE baseline), ``perceptual_loss``
(off: pixel MSE), ``decoder_in_both_phases`` (off: the decoder learns in the AAE phase only).

Presets: the defaults train stably at short CPU budgets on the embedded data; the ``paper`` preset
(aegen/configs/codegen_aae/paper.yaml: ``aegen fit --model codegen_aae --preset paper``, or
``CodeGeneratorAAE(**aegen.presets.options("codegen_aae", "paper"))``) is the paper's training as
described above. The defaults deviate from the paper in four options, because the paper's training
collapses on digits (RESULTS.md): CG also follows the encoder's codes against D_C in
the AAE phase (``code_follow_weight`` 20, paper 0: the paper keeps CG fixed there, and CG alone,
trained through D_I, collapses to one shape; at weight 1 it still does within 10 epochs of the
digits); the decoder learns in the AAE phase only
(``decoder_in_both_phases`` off, paper on: Table 3's row without "C"; with it the decoder collapses
to one output on digits); the encoder's D_C-fooling term has weight 0.1 (``code_adv_weight``,
paper 1: 1 squeezes the codes into CG's early, narrow spread); and Q also learns the labels of
real images when s comes from the data (``info_on_real`` on, paper off: AC-GAN's practice; without
it the label does not control the class).

Choices where the paper is silent (all options): Adam lr 1e-3 (the ``paper`` preset: 2e-4, DCGAN's,
at which the default's code generator collapses within 10 epochs of the digits), betas (0.5, 0.999);
D_I sees each image set (real, generated, reconstructed) as its own batch, so its batch norm
normalises generated images alone in its step as in the code generator's; CG is an MLP
(noise + s) -> 1000 -> 1000 -> code with LeakyReLU (Table A.2 is missing); the information term
has weight 1, as does the D_C fooling term in the ``paper`` preset; F uses D_I's batch-norm running
statistics (so F(x) is a function of x alone, not of the batch it shares with Dec(Enc(x))); D_I's
width is twice the autoencoder's ``width`` (64-128-256 at the default 32); a conditional model
samples conditions from a bank of training conditions; the batch size and epochs are not given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aegen.losses import adversarial_loss, discriminator_loss
from aegen.models.base import GenerativeAE
from aegen.models.codegen_conditions import Condition, make_condition
from aegen.nets import MLP, ConvDecoder, ConvEncoder, LatentDiscriminator
from aegen.registry import register_model


class ImageCritic(nn.Module):
    """D_I with its Q head: stride-2 convs (``features``: the perceptual features), fc, then a
    real/fake logit and ``q_dim`` outputs for Q."""

    def __init__(self, img_shape: Sequence[int], width: int, fc: int, q_dim: int, levels: int = 3) -> None:
        super().__init__()
        size = img_shape[1]
        levels = min(levels, size.bit_length() - 3)  # at most down to 4x4
        self.features = ConvEncoder(img_shape, None, width=width, levels=levels)
        flat = self.features.feature_channels * self.features.feature_size**2
        self.fc = nn.Sequential(nn.Linear(flat, fc), nn.LeakyReLU(0.2))
        self.logit = nn.Linear(fc, 1)
        self.q = nn.Linear(fc, q_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images -> (real/fake logits (B,), Q outputs (B, q_dim))."""
        h = self.fc(self.features(x).flatten(1))
        return self.logit(h).squeeze(-1), self.q(h)


@register_model("codegen_aae")
class CodeGeneratorAAE(GenerativeAE):
    """AAE with a learned prior: a code generator trained adversarially in image space (Wang et al. 2020).

    Args:
        setting: what s is (``aegen.models.codegen_conditions``): unsupervised (s ~ Cat(categories)),
            supervised (s = the image's class) or conditional (s = the image's label vector, e.g.
            CelebA attributes or fonts factors).
        latent_dim: size of the code (the paper: 64).
        noise_dim: Gaussian noise fed to CG (default: 90 unsupervised, the paper's 10 + 90;
            latent_dim minus the size of s when conditioned, the paper's 10 + 54 -> 64).
        categories: K of the unsupervised s ~ Cat(K) (the paper: 10).
        label_column: supervised: take the class from this column of (B, K) labels (default:
            the datamodule's class, e.g. the fonts letter, or the label itself when (B,)).
        num_labels: supervised: number of classes of s (default: num_classes of the data).
        condition_dim: conditional: size of the condition vector (labels (B, condition_dim)).
        condition_sizes: conditional: labels are (B, K) value indices, one-hot encoded per
            column with these sizes (e.g. fonts [52, 21, 3, 10, 10]); Q then predicts each with
            cross-entropy instead of squared error.
        learned_prior: the code generator (off: codes N(0, I), or [one-hot s, noise] when
            conditioned: the paper's AAE baseline; Table 3 "A").
        perceptual_loss: reconstruct in D_I's last conv features (off: pixel MSE; Table 3 "B").
        decoder_in_both_phases: update the decoder in the prior-improvement phase too (off: AAE
            phase only; Table 3 "C"; the paper: on).
        generator_hidden: hidden sizes of CG's MLP (the paper's Table A.2 is missing).
        code_disc_hidden: hidden sizes of D_C's MLP (the paper: 1000-500-200).
        disc_width: channels of D_I's first conv, doubling per stage (default: 2 * width; the
            paper: 64).
        disc_fc: size of D_I's fully connected layer (the paper: 1000).
        code_adv_weight: weight of the encoder's D_C-fooling term in the AAE phase (the paper: 1,
            its losses are summed unweighted).
        info_weight: weight of the information term (Eq. 7) for CG, Dec and Q (the paper gives
            none: 1).
        code_follow_weight: beyond the paper (the paper: 0, CG is fixed in the AAE phase): CG also
            plays against D_C in the AAE phase, with this weight, towards the encoder's codes, so
            it learns their spread in code space as well as from D_I in image space.
        info_on_real: beyond the paper (the paper: off): when s comes from the data (supervised,
            conditional), Q also learns s of the real images, as AC-GAN's classifier does, so the
            information term ties s to what s means in the data rather than to any mark CG leaves
            on its images.
        recon_as_fake: D_I also learns Dec(Enc(x)) = fake (the paper: on).
        condition_bank: conditional: training conditions kept to draw ``sample`` conditions from.
        lr: Adam learning rate of every network (not in the paper).
        betas: Adam betas (not in the paper).
    """

    samples_from_code_gaussian = False

    def __init__(
        self,
        setting: Literal["unsupervised", "supervised", "conditional"] = "unsupervised",
        latent_dim: int = 64,
        noise_dim: int | None = None,
        categories: int = 10,
        label_column: int | None = None,
        num_labels: int | None = None,
        condition_dim: int | None = None,
        condition_sizes: list[int] | None = None,
        learned_prior: bool = True,
        perceptual_loss: bool = True,
        decoder_in_both_phases: bool = False,
        generator_hidden: tuple[int, ...] = (1000, 1000),
        code_disc_hidden: tuple[int, ...] = (1000, 500, 200),
        disc_width: int | None = None,
        disc_fc: int = 1000,
        code_adv_weight: float = 0.1,
        info_weight: float = 1.0,
        code_follow_weight: float = 20.0,
        info_on_real: bool = True,
        recon_as_fake: bool = True,
        condition_bank: int = 2048,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        **kwargs,
    ) -> None:
        """The options are described in the class docstring; ``kwargs`` go to ``GenerativeAE``."""
        super().__init__(latent_dim=latent_dim, lr=lr, betas=betas, **kwargs)
        self.condition = make_condition(
            setting, categories=categories, num_labels=num_labels or self.hparams.num_classes,
            label_column=label_column, condition_dim=condition_dim, condition_sizes=condition_sizes,
            condition_bank=condition_bank)
        self.noise_dim = self.condition.default_noise(latent_dim) if noise_dim is None else noise_dim
        self._check_options(self.condition, latent_dim, self.noise_dim, learned_prior, code_follow_weight)
        conditioned = self.condition.from_data
        # noise of the prior: CG's noise input, or the whole code without CG nor s
        self.prior_noise_dim = self.noise_dim if learned_prior or conditioned else latent_dim
        self.learned_prior, self.perceptual_loss = learned_prior, perceptual_loss
        self.decoder_in_both_phases, self.code_follow_weight = decoder_in_both_phases, code_follow_weight
        self.code_adv_weight, self.info_weight, self.recon_as_fake = code_adv_weight, info_weight, recon_as_fake
        self.info_on_real = info_on_real and conditioned
        self.uses_info = learned_prior or conditioned  # the information term needs s in the decoded prior sample

        width, size = self.hparams.width, self.condition.size
        self.encoder = ConvEncoder(self.img_shape, latent_dim, width=width)
        self.decoder = ConvDecoder(self.img_shape, latent_dim, width=width)
        self.code_generator = (MLP(self.noise_dim + size, generator_hidden, latent_dim, activation="leaky_relu")
                               if learned_prior else None)
        self.code_critic = LatentDiscriminator(latent_dim + (size if conditioned else 0), code_disc_hidden)
        self.image_critic = ImageCritic(self.img_shape, disc_width or 2 * width, disc_fc, size)

    @staticmethod
    def _check_options(condition: Condition, latent_dim: int, noise_dim: int, learned_prior: bool,
                       code_follow_weight: float) -> None:
        """The checks that involve several options (each condition checks its own)."""
        if noise_dim < 1:
            raise ValueError(f"noise_dim must be a positive integer, got {noise_dim}")
        if not learned_prior and condition.from_data and noise_dim + condition.size != latent_dim:
            raise ValueError(f"without the learned prior the code is [s, noise]: noise_dim ({noise_dim}) + the size "
                             f"of s ({condition.size}) must equal latent_dim ({latent_dim})")
        if code_follow_weight < 0:
            raise ValueError(f"code_follow_weight must be >= 0, got {code_follow_weight}")

    # ----------------------------------------------------------------- public API
    def codes_from(self, s: Tensor, noise: Tensor) -> Tensor:
        """Prior codes for conditions s (B, |s|) and noise (B, noise_dim): CG(noise, s) or the fixed prior."""
        if self.code_generator is not None:
            return self.code_generator(torch.cat([noise, s], dim=1))
        return self.condition.fixed_code(s, noise)

    def _draw_noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        return torch.randn(n, self.prior_noise_dim, generator=generator, device=self.device)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes of the (learned) prior; s drawn uniformly (conditional: from the bank of training conditions)."""
        s = self.condition.draw(n, generator, self.device)
        return self.codes_from(s, self._draw_noise(n, generator))

    @torch.no_grad()
    def sample_conditional(self, n: int, classes: Tensor | int, generator: torch.Generator | None = None) -> Tensor | None:
        """``n`` images of the given classes ((n,) indices, or one int for all); None unless supervised."""
        s = self.condition.of_classes(torch.as_tensor(classes, dtype=torch.long, device=self.device).expand(n))
        if s is None:
            return None
        return self.decode(self.codes_from(s, self._draw_noise(n, generator)))

    @torch.no_grad()
    def sample_given(self, conditions: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One image per condition: labels as in training batches ((n,) classes or (n, K) vectors)."""
        s, _ = self.conditions_of(conditions.to(self.device), generator)
        return self.decode(self.codes_from(s, self._draw_noise(len(s), generator)))

    def cluster_probs(self, x: Tensor) -> Tensor | None:
        """Q's class probabilities of images (unsupervised: its categories; supervised: the labels)."""
        if not self.condition.categorical:
            return None
        return self.image_critic(x)[1].softmax(-1)

    def conditions_of(self, y: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(s fed to CG and D_C (B, |s|), Q's target) for a batch's labels (``Condition.from_labels``)."""
        datamodule = getattr(self._trainer, "datamodule", None)
        return self.condition.from_labels(y, generator or self.noise, getattr(datamodule, "class_labels", None))

    # ----------------------------------------------------------------- optimisation
    def optimizer_groups(self):
        # the prior-improvement phase's generator step: CG, Q's head (the information term trains
        # both players) and, with decoder_in_both_phases, the decoder (its own Adam state)
        generator = [*self.image_critic.q.parameters()]
        if self.code_generator is not None:
            generator += [*self.code_generator.parameters()]
        if self.decoder_in_both_phases:
            generator += [*self.decoder.parameters()]
        return {
            "code_discriminator": self.code_critic.parameters(),
            "autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
            "image_discriminator": self.image_critic.parameters(),
            "code_generator": generator,
        }

    def code_logits(self, z: Tensor, s: Tensor) -> Tensor:
        """D_C's logits; conditioned on s (Eq. 8) unless unsupervised."""
        return self.code_critic(self.condition.critic_input(z, s))

    def reconstruction_loss(self, recon: Tensor, x: Tensor) -> Tensor:
        """Eq. 6: squared error in D_I's last conv features (or pixel MSE without the perceptual loss)."""
        if not self.perceptual_loss:
            return F.mse_loss(recon, x)
        # F as a function of one image: D_I's batch norm uses its running statistics here, so
        # F(x) does not depend on the reconstructions it is batched with
        was_training = self.image_critic.training
        self.image_critic.eval()
        try:
            fake, real = self.image_critic.features(torch.cat([recon, x])).chunk(2)
        finally:
            self.image_critic.train(was_training)
        return F.mse_loss(fake, real.detach())

    def aae_phase(self, x: Tensor, s: Tensor) -> dict[str, Tensor]:
        """D_C: CG(z, s) real, Enc(x) fake (one pass on both); then Enc + Dec: reconstruction and fooling D_C.
        CG is fixed. The encoder runs once: its weights do not change between the two steps."""
        with torch.no_grad():
            prior = self.codes_from(s, self._draw_noise(len(x), self.noise))
        z = self.encode(x)
        with self.phase("code_discriminator") as update:
            real, fake = self.code_logits(torch.cat([prior, z.detach()]), torch.cat([s, s])).chunk(2)
            d_c = update(discriminator_loss(real, fake))
        with self.phase("autoencoder") as update:
            recon = self.reconstruction_loss(self.decode(z), x)
            fool = adversarial_loss(self.code_logits(z, s), real=True)
            update(recon + self.code_adv_weight * fool)
        out = {"code_disc": d_c, "recon": recon.detach(), "code_fool": fool.detach()}
        if self.code_follow_weight and self.code_generator is not None:
            with self.phase("code_generator") as update:  # CG towards Enc(x), which D_C calls fake
                prior = self.codes_from(s, self._draw_noise(len(x), self.noise))
                out["code_follow"] = update(self.code_follow_weight * adversarial_loss(self.code_logits(prior, s), real=False))
        return out

    @property
    def _trains_prior(self) -> bool:
        return self.code_generator is not None or self.decoder_in_both_phases or self.uses_info

    def prior_improvement_phase(self, x: Tensor, s: Tensor, target: Tensor) -> dict[str, Tensor]:
        """D_I (+ Q): x real, Dec(CG(z, s)) and Dec(Enc(x)) fake; then CG (+ Dec, Q) fool D_I with the info term."""
        if not (self._trains_prior or self.perceptual_loss):
            return {}  # the plain AAE baseline: D_I would be unused
        info = self.info_weight if self.uses_info else 0.0
        with self.phase("image_discriminator") as update:
            with torch.no_grad():
                generated = self.decode(self.codes_from(s, self._draw_noise(len(x), self.noise)))
                fakes = [generated, self.reconstruct(x)] if self.recon_as_fake else [generated]
            # each image set is its own batch, so D_I's batch norm sees generated images alone, as in
            # the code generator's step below, and not mixed with reconstructions
            real_logits, q_real = self.image_critic(x)
            outputs = [self.image_critic(images) for images in fakes]
            fake_logits, q = torch.cat([logits for logits, _ in outputs]), outputs[0][1]  # Q of CG's images
            q_loss = self.condition.information_loss(q, target) if info else q.new_zeros(())
            if info and self.info_on_real:
                q_loss = q_loss + self.condition.information_loss(q_real, target)
            d_i = update(discriminator_loss(real_logits, fake_logits) + info * q_loss)
        out = {"image_disc": d_i, "info_disc": q_loss.detach()}
        if not self._trains_prior:
            return out
        with self.phase("code_generator") as update:
            logits, q = self.image_critic(self.decode(self.codes_from(s, self._draw_noise(len(x), self.noise))))
            fool = adversarial_loss(logits, real=True)
            info_loss = self.condition.information_loss(q, target) if info else q.new_zeros(())
            update(fool + info * info_loss)
        return {**out, "image_fool": fool.detach(), "info": info_loss.detach()}

    def on_train_start(self) -> None:
        # the GAN phases rely on batch-norm batch statistics: train in train mode even when the
        # model was handed to fit() in eval mode (Lightning keeps the modes it finds)
        self.train()

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        s, target = self.conditions_of(y)
        self.condition.remember(s)
        return {**self.aae_phase(x, s), **self.prior_improvement_phase(x, s, target)}
