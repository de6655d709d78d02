"""A user's own model: one class and one decorator in the user's own module make it an aegen model.

tests/conftest.py imports this module, so the model is registered before collection and the
model-generic tests (tests/test_models.py, tests/test_faults.py) run on it like on aegen's own.
"""

from torch import Tensor, nn

from aegen.models.base import GenerativeAE
from aegen.registry import register_model

NAME = "user_linear_ae"


@register_model(NAME)
class UserLinearAE(GenerativeAE):
    """A user's linear autoencoder, defined outside aegen: one linear layer each way."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        pixels = self.img_shape[0] * self.img_shape[1] * self.img_shape[2]
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, self.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(self.latent_dim, pixels), nn.Tanh(), nn.Unflatten(1, self.img_shape))

    def optimizer_groups(self):
        return {"autoencoder": self.parameters()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.reconstruction_phase(x)


def test_the_users_model_is_listed_and_trains_through_aegen_fit(capsys):
    import aegen
    from aegen import registry
    from aegen.cli import main
    from tests.conftest import fit_cli

    assert registry.catalogue()["models"][NAME] == "A user's linear autoencoder, defined outside aegen: one linear layer each way."
    assert main(["list"]) == 0
    assert f"  {NAME} " in capsys.readouterr().out
    assert registry.get_model(NAME) is UserLinearAE and not UserLinearAE.__module__.startswith("aegen")
    ckpt = fit_cli(capsys, "--model", NAME, "--model.latent_dim", "4", "--trainer.max_steps", "2",
                   "--trainer.limit_val_batches", "1", "--data.batch_size", "8")
    assert ckpt.parent.parent.parent.name == f"{NAME}-digits"
    model = aegen.load(ckpt)
    assert type(model) is UserLinearAE and model.sample(3).shape == (3, 1, 32, 32)
