"""LSGAN (Mao et al. 2017): DCGAN's networks and schedule with least-squares losses, no encoder.

With the a-b-c coding (a: the label of fake images, b: of real ones, c: the value G wants D to believe
for its images), the paper's Eq. 2:

    min_D  1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
    min_G  1/2 E_z[(D(G(z)) - c)^2]

D's output is linear (no sigmoid). The paper trains with Eq. 9, a = -1, b = 1, c = 0 (b - c = 1 and
b - a = 2: minimising it minimises the Pearson chi^2 divergence between p_data + p_g and 2 p_g), and
reports that the 0-1 coding of Eq. 10 (a = 0, b = c = 1) performs similarly. Each minibatch runs D's
step, then G's (``DCGAN``'s phases); Adam beta1 0.5 as DCGAN, lr 1e-3 by default (DCGAN's 2e-4 in the
preset ``paper``).
"""

from __future__ import annotations

from torch import Tensor

from aegen.models.dcgan import DCGAN
from aegen.registry import register_model


def least_squares(outputs: Tensor, target: float) -> Tensor:
    """1/2 E[(outputs - target)^2]."""
    return 0.5 * (outputs - target).pow(2).mean()


@register_model("lsgan")
class LSGAN(DCGAN):
    """LSGAN: DCGAN with the least-squares a-b-c losses; no encoder."""

    def __init__(self, a: float = -1.0, b: float = 1.0, c: float = 0.0, lr: float = 1e-3, **kwargs) -> None:
        """
        Args:
            a: D's target for G's images (paper, Eq. 9: -1; the 0-1 coding of Eq. 10: 0).
            b: D's target for real images (paper: 1, both codings).
            c: the value G wants D to output for its images (paper, Eq. 9: 0; the 0-1 coding: 1).
            lr: Adam learning rate of D and G (default 1e-3: at DCGAN's 2e-4, 10 epochs of the digits
                leave noisy blobs; the preset ``paper`` keeps DCGAN's 2e-4).
        """
        super().__init__(lr=lr, **kwargs)
        if a == b:
            raise ValueError(f"a (fake target) and b (real target) must differ, got {a} and {b}")
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
        return least_squares(real, self.b) + least_squares(fake, self.a)

    def g_loss(self, fake: Tensor) -> Tensor:
        """1/2 E[(D(G(z)) - c)^2]."""
        return least_squares(fake, self.c)
