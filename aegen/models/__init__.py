"""Every model file registers itself on import; one line per method."""

from aegen.models import aae, ae, vae  # noqa: F401
from aegen.models import acai, gaia  # noqa: F401
from aegen.models import aae_cluster, infogan, latentgan  # noqa: F401
from aegen.models import deae  # noqa: F401
from aegen.models import codegen_aae, learned_prior, vamp  # noqa: F401
from aegen.models import dcgan, lsgan, wgan_gp  # noqa: F401
from aegen.models import btcvae, infovae  # noqa: F401
from aegen.models import vaegan  # noqa: F401
from aegen.models import began  # noqa: F401
from aegen.models import age, ali, avb  # noqa: F401
from aegen.models.base import GenerativeAE

__all__ = ["GenerativeAE"]
