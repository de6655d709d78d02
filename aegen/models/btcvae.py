"""beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018, "Isolating sources of disentanglement in VAEs").

The ELBO's KL term, averaged over the data n ~ p(n), splits into three (the paper's Eq. 2):

    E_p(n) KL(q(z|n) || p(z)) = KL(q(z, n) || q(z) p(n))      index-code mutual information (MI)
                               + KL(q(z) || prod_j q(z_j))     total correlation (TC)
                               + sum_j KL(q(z_j) || p(z_j))    dimension-wise KL

and the beta-TCVAE minimises ``recon + alpha * MI + beta * TC + gamma * dim-KL`` ("we find that
alpha = gamma = 1 and tuning only beta works best"). The aggregate posterior q(z) and its marginals
q(z_j) are estimated on the minibatch by minibatch-weighted sampling (MWS, the paper's Eq. 4): for a
minibatch x_1..x_M of a dataset of N items and z_i ~ q(z|x_i),

    log q(z_i) ~= logsumexp_j log q(z_i | x_j) - log(N M)       (likewise per dimension for q(z_ij))

Each term is the batch mean of its log-ratio at the drawn z_i (MI: log q(z_i|x_i) - log q(z_i); TC:
log q(z_i) - sum_j log q(z_ij); dim-KL: sum_j log q(z_ij) - log p(z_i)), so the three sum to the
single-sample KL estimate log q(z_i|x_i) - log p(z_i) exactly, as in the authors' code.

N is ``dataset_size`` if given, else read from the trainer's training loader when training starts
(batches per epoch x batch size x processes); before that (Lightning's sanity check, or calls
outside a trainer) the minibatch stands for the data (N = M).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Normal

from aegen.errors import AegenError
from aegen.models.vae import VAE, reparameterize
from aegen.registry import register_model


def kl_decomposition(z: Tensor, mu: Tensor, logvar: Tensor, dataset_size: int) -> dict[str, Tensor]:
    """MWS estimates of the KL term's index-code MI, total correlation and dimension-wise KL, and their
    sum ``kl`` (the mean of log q(z|x) - log p(z)), each averaged over the batch; z, mu, logvar: (M, D)."""
    z, mu, logvar = z.float(), mu.float(), logvar.float()
    # log q(z_i[d] | x_j[d]) for every pair (i, j) and dimension d: (M, M, D)
    posteriors = Normal(mu.unsqueeze(0), (0.5 * logvar).exp().unsqueeze(0), validate_args=False)
    log_q_pairs = posteriors.log_prob(z.unsqueeze(1))
    log_nm = math.log(dataset_size * len(z))
    log_q_cond = log_q_pairs.diagonal(dim1=0, dim2=1).sum(0)  # log q(z_i | x_i): (M,)
    log_q = torch.logsumexp(log_q_pairs.sum(2), dim=1) - log_nm
    log_q_marginals = (torch.logsumexp(log_q_pairs, dim=1) - log_nm).sum(1)
    log_p = Normal(0.0, 1.0, validate_args=False).log_prob(z).sum(1)
    return {"mi": (log_q_cond - log_q).mean(), "tc": (log_q - log_q_marginals).mean(),
            "dim_kl": (log_q_marginals - log_p).mean(), "kl": (log_q_cond - log_p).mean()}


@register_model("btcvae")
class BetaTCVAE(VAE):
    """beta-TCVAE: a VAE whose KL term is split into MI, total correlation and dimension-wise KL, the TC weighted."""

    def __init__(self, beta: float = 6.0, alpha: float = 1.0, gamma: float = 1.0, dataset_size: int | None = None,
                 **kwargs) -> None:
        """
        Args:
            beta: weight of the total correlation (paper: tuned, 6 a typical value; 1 gives the VAE).
            alpha: weight of the index-code mutual information (paper 1).
            gamma: weight of the dimension-wise KL (paper 1).
            dataset_size: N, the number of training items in the MWS estimator (None: read from the
                trainer's training loader when training starts).
        """
        super().__init__(beta=beta, **kwargs)
        if min(alpha, gamma) < 0:
            raise ValueError(f"alpha and gamma must be >= 0, got {alpha} and {gamma}")
        if dataset_size is not None and dataset_size < 1:
            raise ValueError(f"dataset_size must be a positive integer, got {dataset_size}")
        self.alpha, self.gamma = alpha, gamma
        #: N of the MWS estimator (None until training starts, unless given)
        self.dataset_size: int | None = dataset_size

    def on_train_start(self) -> None:
        if self.hparams.dataset_size is None:
            self.dataset_size = self.training_set_size()

    def training_set_size(self) -> int:
        """Items per epoch of the trainer's training loader, over all processes: batches x batch size x processes."""
        loader = self.trainer.train_dataloader
        try:
            return len(loader) * loader.batch_size * self.trainer.world_size
        except (TypeError, AttributeError):
            raise AegenError("btcvae cannot read the dataset size from this training loader; "
                             "give it with --model.dataset_size N") from None

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Reconstruction (squared error summed over pixels), the KL's three parts and the weighted loss."""
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar, self.randn(*mu.shape))
        recon = F.mse_loss(self.decode(z), x, reduction="none").flatten(1).sum(1).mean()
        parts = kl_decomposition(z, mu, logvar, self.dataset_size or len(x))
        loss = recon + self.alpha * parts["mi"] + self.beta * parts["tc"] + self.gamma * parts["dim_kl"]
        return {"loss": loss, "recon": recon, **parts}
