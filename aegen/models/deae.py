"""DEAE, the disentangled exploration autoencoder, and its base GSL (group-supervised learning).

One deterministic autoencoder whose code is split into named blocks, one per factor of the data
(Fonts: letter, font, size, font colour, background colour). It trains on groups (see
``aegen.data.groups``): an anchor C and, for each factor k, a partner X_k sharing exactly factor k
with C. Losses (GZS-Net's group-supervised learning, as in the authors' code):

- ``recon``: L1 reconstruction of every image of the group;
- ``swap``: Dec(z_C with block k taken from z_Xk) reconstructs C, and Dec(z_Xk with block k taken
  from z_C) reconstructs X_k, for every k (L1);
- ``composite``: Dec(block k taken from z_Xk, for every k) reconstructs C (L1).

``deae`` adds directed exploration with encoder reuse (``explore``): for each explored block, a
new value is drawn uniformly, element-wise, between the block's values in the anchor's code and
in another anchor's code of the batch; the anchor's code with that block replaced is decoded and
re-encoded, and every OTHER block of the re-encoded code is pulled back to the anchor's (MSE,
anchor code as a fixed target), weight 1e-3. Optionally (off by default) the explored block is
also pulled to the drawn value. ``gsl`` is the same model without this loss (``DEAE`` subclasses
``GSL`` and only adds ``exploration_losses``).

Settings: the defaults train on aegen's fonts (default blocks: the paper's Fonts layout, 20 dims
as letter 4, size 4, font colour 4, background colour 3, font (style) 5; Adam lr 1e-4, betas
(0.9, 0.999); every block explored). The preset ``paper`` (``aegen fit --model deae --preset
paper``) is the authors' setting: only the background-colour block explored, conv width 64,
batch 4, 128 px, 1e6 steps. The conv nets are aegen's ``ConvEncoder``/``ConvDecoder``, not the
authors' 128x128 residual networks with fully connected bottleneck; images in [-1, 1] with a
tanh decoder, as theirs.

Known deviations from the authors' code, with no option here (the ``paper`` preset keeps them):

- the second code of an exploration is another anchor of the batch; theirs is the anchor's
  partner that shares the letter (the group's letter image);
- one draw per explored block and step; theirs sums the losses of 10 draws;
- the re-encoding's target (the anchor's code) is detached; theirs is not, so the exploration
  loss also moves the anchor's own encoding;
- each loss is a mean over the group's images (``recon``) and over the 2K swaps (``swap``);
  theirs sums the per-image mean L1 terms (6 reconstructions, 10 swaps plus the composite), so
  their reconstruction and swap terms weigh 6 and 10 times what the same weights give here;
- their script also has an unsupervised re-encoding loss of an all-partners composite, weight 0
  in their setting, which is not implemented.

The model trains only on datasets with factor labels (an AegenError says so otherwise) and turns
group batches on itself; encode/decode/reconstruct/sample/interpolate take plain images, and
sampling decodes codes from a sampler fitted to the anchors' codes (a Gaussian by default), as for
a plain AE. ``blocks`` maps each factor name to its slice of the code, for ``aegen explore`` and
``aegen edit``; ``block_sizes`` gives the layout as sizes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.errors import AegenError
from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model

#: the paper's Fonts layout (20 dims), in code order, under aegen's fonts factor names ("font" is the style)
FONTS_BLOCKS: dict[str, int] = {"letter": 4, "size": 4, "font_colour": 4, "background_colour": 3, "font": 5}


def check_options(blocks: dict[str, int] | None, latent_dim: int | None, weights: dict[str, float],
                  explore: list[str] | None = None) -> tuple[dict[str, int], list[str]]:
    """The cross-field checks of GSL and DEAE; returns the block layout and the explored blocks in use.

    ``blocks`` (default ``FONTS_BLOCKS``) maps names to positive sizes whose sum ``latent_dim``
    must equal when given; every weight is >= 0; ``explore`` (default: every block) names blocks.
    """
    blocks = dict(FONTS_BLOCKS if blocks is None else blocks)
    if not blocks or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in blocks.values()):
        raise ValueError(f"--model.blocks maps factor names to positive block sizes, got {blocks!r}")
    total = sum(blocks.values())
    if latent_dim is not None and latent_dim != total:
        raise ValueError(f"latent_dim {latent_dim} differs from the sum of --model.blocks ({total}); "
                         "leave latent_dim out or change the block sizes")
    for name, weight in weights.items():
        if weight < 0:
            raise ValueError(f"{name} must be >= 0, got {weight}")
    explored = list(blocks) if explore is None else list(explore)
    if not explored or any(name not in blocks for name in explored):
        raise ValueError(f"--model.explore takes block names from {', '.join(blocks)}, got {explore!r}")
    return blocks, explored


@register_model("gsl")
class GSL(GenerativeAE):
    """Group-supervised learning (GZS-Net): a factor-block autoencoder trained by swapping blocks in groups."""

    #: trains only on data with factor labels, on group batches (tests and tools read this)
    requires_factors: ClassVar[bool] = True

    def __init__(
        self,
        blocks: dict[str, int] | None = None,
        swap_weight: float = 1.0,
        composite_weight: float = 1.0,
        latent_dim: int | None = None,
        lr: float = 1e-4,
        **kwargs,
    ) -> None:
        """
        Args:
            blocks: code block size per factor name, in code order (default and paper: the Fonts
                layout ``{letter: 4, size: 4, font_colour: 4, background_colour: 3, font: 5}``);
                every name must be a factor of the data; factors without a block get no swap loss.
            swap_weight: weight of the swap losses, both directions, all blocks (paper: 1).
            composite_weight: weight of the all-partners composite loss (paper: 1).
            latent_dim: size of the code; must equal the sum of ``blocks`` (default: that sum; paper: 20).
            lr: Adam learning rate (paper: 1e-4). The paper's conv width is 64 (``width``).
        """
        blocks, _ = check_options(blocks, latent_dim, {"swap_weight": swap_weight, "composite_weight": composite_weight})
        latent_dim = sum(blocks.values())  # checkpoints record the layout and code size in use
        super().__init__(latent_dim=latent_dim, lr=lr, **kwargs)
        self.swap_weight, self.composite_weight = swap_weight, composite_weight
        starts = torch.tensor([0, *blocks.values()]).cumsum(0).tolist()
        self.blocks: dict[str, slice] = {name: slice(a, b) for name, a, b in zip(blocks, starts, starts[1:])}
        self.encoder = ConvEncoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        # group position (1 + the data's factor index) of each block's partner; set from the data in setup
        self.partner_of: dict[str, int] = {name: 1 + i for i, name in enumerate(blocks)}

    # ----------------------------------------------------------------- public API
    @property
    def block_sizes(self) -> dict[str, int]:
        """The block layout in use: size per factor name, in code order."""
        return {name: s.stop - s.start for name, s in self.blocks.items()}

    def block_mask(self, name: str) -> Tensor:
        """Boolean (latent_dim,) mask of one factor's block."""
        mask = torch.zeros(self.latent_dim, dtype=torch.bool, device=self.device)
        mask[self.blocks[name]] = True
        return mask

    # ----------------------------------------------------------------- data
    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        datamodule = self.trainer.datamodule
        names = list(getattr(datamodule, "factor_names", None) or [])
        if not names:
            data = getattr(datamodule, "registry_name", "") or type(datamodule).__name__
            raise AegenError(f"{self.registry_name} trains on a dataset with known factors (e.g. --data fonts); "
                             f"{data} has none")
        unknown = [name for name in self.blocks if name not in names]
        if unknown:
            raise AegenError(f"--model.blocks names {', '.join(unknown)}, not factors of the data ({', '.join(names)}); "
                             "give one block size per factor name")
        self.partner_of = {name: 1 + names.index(name) for name in self.blocks}
        datamodule.groups = True  # this model trains on groups: anchor + one partner per factor

    def _groups(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[1] < 1 + max(self.partner_of.values()):
            raise AegenError(f"{self.registry_name} trains on group batches (anchor + one partner per factor) from a "
                             "factor dataset, e.g. --data fonts; got plain images")
        return x

    @torch.no_grad()
    def fit_sampler(self, batches: Iterable[tuple[Tensor, Tensor]], max_items: int = 10_000) -> None:
        """As the base, on the anchors of group batches."""
        super().fit_sampler(((x[:, 0] if x.dim() == 5 else x, y) for x, y in batches), max_items)

    # ----------------------------------------------------------------- losses
    def group_losses(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Reconstruction, swap and composite losses of groups x (B, 1+K, C, H, W); also the codes (B, 1+K, D)."""
        batch, size = x.shape[:2]
        z = self.encode(x.flatten(0, 1)).unflatten(0, (batch, size))
        anchor = z[:, 0]
        losses = {"recon": F.l1_loss(self.decode(z.flatten(0, 1)), x.flatten(0, 1))}

        swapped, targets = [], []
        composite = torch.zeros_like(anchor)
        for name, p in self.partner_of.items():
            mask, partner = self.block_mask(name), z[:, p]
            swapped += [torch.where(mask, partner, anchor), torch.where(mask, anchor, partner)]
            targets += [x[:, 0], x[:, p]]
            composite = torch.where(mask, partner, composite)
        losses["swap"] = F.l1_loss(self.decode(torch.cat(swapped)), torch.cat(targets))
        losses["composite"] = F.l1_loss(self.decode(composite), x[:, 0])
        return losses, z

    def extra_losses(self, z: Tensor) -> dict[str, Tensor]:
        """Further weighted losses on the group codes (B, 1+K, D); none for GSL."""
        return {}

    def total_loss(self, losses: dict[str, Tensor]) -> Tensor:
        return losses["recon"] + self.swap_weight * losses["swap"] + self.composite_weight * losses["composite"]

    # ----------------------------------------------------------------- training
    def optimizer_groups(self):
        return {"autoencoder": self.parameters()}

    def group_supervised_phase(self, x: Tensor) -> dict[str, Tensor]:
        """One Adam step on the group-supervised losses (plus DEAE's exploration)."""
        with self.phase("autoencoder") as update:
            losses, z = self.group_losses(x)
            losses.update(self.extra_losses(z))
            losses["loss"] = update(self.total_loss(losses))
        return {k: v.detach() for k, v in losses.items()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.group_supervised_phase(self._groups(x))


@register_model("deae")
class DEAE(GSL):
    """Disentangled exploration autoencoder: GSL plus directed exploration with encoder reuse."""

    def __init__(
        self,
        explore: list[str] | None = None,
        explore_weight: float = 1e-3,
        explore_self: bool = False,
        **kwargs,
    ) -> None:
        """
        Args:
            explore: the blocks explored at every step (default: all blocks; paper: the background
                colour block only, ``[background_colour]``).
            explore_weight: weight of the exploration loss (paper: 1e-3).
            explore_self: also pull the explored block of the re-encoded code to the drawn value
                (paper: off).
        """
        super().__init__(**kwargs)
        _, self.explore = check_options(self.block_sizes, None, {"explore_weight": explore_weight}, explore)
        self.explore_weight, self.explore_self = explore_weight, explore_self

    def exploration_losses(self, anchor: Tensor) -> dict[str, Tensor]:
        """Directed exploration with encoder reuse on anchor codes (B, D): ``explore`` (and ``explore_self``)."""
        batch = len(anchor)
        other = anchor[torch.randperm(batch, generator=self.noise, device=self.device)]
        masks = torch.stack([self.block_mask(name) for name in self.explore])  # (E, D)
        u = torch.rand(len(masks), batch, self.latent_dim, generator=self.noise, device=self.device)
        drawn = anchor + u * (other - anchor)  # element-wise uniform between the two codes
        explored = torch.where(masks[:, None], drawn, anchor)  # (E, B, D): one block changed each
        reencoded = self.encode(self.decode(explored.flatten(0, 1))).unflatten(0, explored.shape[:2])
        target = anchor.detach().expand_as(reencoded)
        keep = ~masks[:, None].expand_as(reencoded)
        losses = {"explore": F.mse_loss(reencoded[keep], target[keep])}
        if self.explore_self:
            losses["explore_self"] = F.mse_loss(reencoded[~keep], explored.detach()[~keep])
        return losses

    def extra_losses(self, z: Tensor) -> dict[str, Tensor]:
        return self.exploration_losses(z[:, 0])

    def total_loss(self, losses: dict[str, Tensor]) -> Tensor:
        explore = losses["explore"] + losses.get("explore_self", 0.0)
        return super().total_loss(losses) + self.explore_weight * explore
