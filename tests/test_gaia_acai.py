"""GAIA's and ACAI's losses on known tensors; the structure loss against a direct computation."""

import math

import pytest
import torch

import aegen
from aegen.models.gaia import balanced_losses, check_options, interpolate_halves, structure_loss
from aegen.nets import MunitDecoder, MunitEncoder


def test_structure_loss_matches_a_direct_computation():
    torch.manual_seed(0)
    x, z = torch.randn(6, 1, 4, 4), torch.randn(6, 3)

    def normalised(v):
        v = v.flatten(1)
        d = torch.tensor([[((a - b) ** 2).mean().item() for b in v] for a in v])
        return d / d.mean()

    sx, sz = normalised(x), normalised(z)
    expected = sum((math.log(1 + sx[i, j]) - math.log(1 + sz[i, j])) ** 2 for i in range(6) for j in range(6)) / 36
    assert structure_loss(x, z).item() == pytest.approx(expected, rel=1e-5)
    # a code that is a scaled copy of the images keeps their structure exactly
    assert structure_loss(x, 3 * x.flatten(1)).item() == pytest.approx(0, abs=1e-10)


def test_balancing_formulas_on_known_values():
    r, f_real, f_samp, dist = torch.tensor(0.2), torch.tensor(0.3), torch.tensor(0.5), torch.tensor(0.1)
    s = lambda v: 1 / (1 + math.exp(-20 * v))  # noqa: E731
    out = balanced_losses(r, f_real, f_samp, dist, alpha=0.5)
    f = 0.4
    p_fake = min(max(s(0.5 * 0.5 - 0.2), 0), 0.9)
    g = s(0.5 - 0.3)
    assert out["p_fake"].item() == pytest.approx(p_fake, rel=1e-6)
    assert out["loss_d"].item() == pytest.approx(0.2 - p_fake * f, rel=1e-6)
    assert out["loss_g"].item() == pytest.approx(g * 0.5 + (1 - g) * 0.3 + 0.5 * 0.1, rel=1e-6)
    assert out["d_share"].item() == pytest.approx(s(0.2 - f), rel=1e-6)
    # D's fake proportion is capped at 0.9 and the losses are clipped to [-1, 1]
    big = balanced_losses(torch.tensor(0.0), torch.tensor(3.0), torch.tensor(3.0), dist)
    assert big["p_fake"].item() == pytest.approx(0.9) and big["loss_d"].item() == -1 and big["loss_g"].item() == 1


def test_balancing_gradients_flow_through_proportions_unless_detached():
    f_samp = torch.tensor(0.31, requires_grad=True)
    args = (torch.tensor(0.2), torch.tensor(0.3), f_samp, torch.tensor(0.0))
    (grad,) = torch.autograd.grad(balanced_losses(*args)["loss_g"], f_samp)
    (grad_detached,) = torch.autograd.grad(balanced_losses(*args, detach=True)["loss_g"], f_samp)
    g = torch.sigmoid(torch.tensor(20 * 0.01)).item()
    assert grad_detached.item() == pytest.approx(g, rel=1e-5)
    assert grad.item() != pytest.approx(grad_detached.item(), rel=1e-3)


def test_interpolations_mix_the_two_halves_and_the_reversed_first_half():
    z = torch.arange(8.0).view(4, 2)  # halves: rows 0-1 and rows 2-3
    out = interpolate_halves(z, torch.tensor([1.0, 0.0]), torch.tensor([0.5, 1.5]))
    torch.testing.assert_close(out[0], z[0])  # a = 1: the first-half code
    torch.testing.assert_close(out[1], z[3])  # a = 0: its partner in the second half
    torch.testing.assert_close(out[2], (z[1] + z[2]) / 2)  # reversed first half: row 1 with row 2
    torch.testing.assert_close(out[3], 1.5 * z[0] - 0.5 * z[3])  # unclipped: extrapolation


def test_gaia_variants_build_and_reconstruct_shapes():
    x = torch.randn(4, 3, 32, 32)
    for arch in ("conv", "munit"):
        model = aegen.get_model("gaia")(img_shape=(3, 32, 32), latent_dim=16, width=8, arch=arch, n_res=1)
        assert model.encode(x).shape == (4, 16) and model.reconstruct(x).shape == x.shape
        assert model.discriminator(x).shape == x.shape
        # one interface for both arches: the encoder's one code tensor is what the decoder takes
        z = model.encoder(x)
        assert isinstance(z, torch.Tensor) and torch.equal(model.decoder(z), model.decode(z))
    with pytest.raises(ValueError, match="arch"):
        aegen.get_model("gaia")(arch="resnet")
    with pytest.raises(ValueError, match="must exceed style_dim"):
        aegen.get_model("gaia")(arch="munit", latent_dim=8, style_dim=8)


def test_munit_code_is_style_then_content():
    model = aegen.get_model("gaia")(img_shape=(1, 32, 32), latent_dim=12, style_dim=5, width=4, arch="munit", n_res=1)
    model.eval()
    x = torch.randn(3, 1, 32, 32)
    style, content = MunitEncoder.forward(model.encoder, x)
    torch.testing.assert_close(model.encode(x), torch.cat([style, content], 1))
    torch.testing.assert_close(model.decode(model.encode(x)), MunitDecoder.forward(model.decoder, style, content))


def test_gaia_paper_preset_builds_the_authors_nets():
    from aegen.presets import options

    paper = options("gaia", "paper")
    assert paper["arch"] == "munit" and paper["lr"] == 1e-4 and paper["adam_eps"] == 1e-8
    assert paper["alpha"] is None and paper["structure_code"] == "content"  # alpha = lr / 2, content code only
    with torch.device("meta"):  # the shapes of the 287M-parameter nets, without their memory
        model = aegen.get_model("gaia")(img_shape=(3, 128, 128), **paper)
        x = torch.empty(8, 3, 128, 128)
        z = model.encode(x)
        assert z.shape == (8, 1024) and model.decode(z).shape == x.shape and model.discriminator(x).shape == x.shape
    assert model.encoder.content_head.out_features == 512 and model.encoder.style[-1].out_channels == 512
    assert model.discriminator.encoder.feature_channels == 128  # D: half of G's 256 channels, no bottleneck
    assert model.discriminator.encoder.content_head is None and len(model.discriminator.decoder.res) == 4
    assert model.alpha == pytest.approx(5e-5)


def test_alpha_none_is_half_the_learning_rate():
    gaia = aegen.get_model("gaia")
    assert gaia(img_shape=(1, 16, 16), latent_dim=4, width=4, lr=0.3, alpha=None).alpha == pytest.approx(0.15)
    assert gaia(img_shape=(1, 16, 16), latent_dim=4, width=4, lr=0.3).alpha == 5e-5  # the default does not follow lr
    assert gaia(img_shape=(1, 16, 16), latent_dim=4, width=4, alpha=0.0).structure_term(
        torch.randn(4, 1, 16, 16), torch.randn(4, 4)).item() == 0


def test_structure_loss_on_the_content_code_only():
    torch.manual_seed(0)
    x = torch.randn(6, 1, 32, 32)
    options = dict(img_shape=(1, 32, 32), latent_dim=12, style_dim=5, width=4, arch="munit", n_res=1)
    model = aegen.get_model("gaia")(structure_code="content", **options)
    z = model.encode(x)
    torch.testing.assert_close(model.structure_term(x, z), structure_loss(x, z[:, 5:]))
    loud_style = torch.cat([10 * torch.randn(6, 5), z[:, 5:]], 1)  # the style part does not count
    torch.testing.assert_close(model.structure_term(x, loud_style), structure_loss(x, z[:, 5:]))
    whole = aegen.get_model("gaia")(**options)  # the default: the whole code [style, content]
    torch.testing.assert_close(whole.structure_term(x, z), structure_loss(x, z))
    assert whole.structure_term(x, loud_style).item() != pytest.approx(structure_loss(x, z[:, 5:]).item(), rel=0.01)
    with pytest.raises(ValueError, match="structure_code content needs a content code: arch munit, not conv"):
        aegen.get_model("gaia")(structure_code="content")
    with pytest.raises(ValueError, match="unknown structure_code"):
        check_options("munit", 12, 5, "style")


def test_acai_critic_regresses_alpha_and_interpolants_are_mixes():
    model = aegen.get_model("acai")(latent_dim=4, width=8)
    z = torch.randn(6, 4)
    x_alpha, alpha = model.interpolants(z)
    assert x_alpha.shape == (6, 1, 32, 32) and ((0 <= alpha) & (alpha <= 0.5)).all()
    assert model.critic(x_alpha).shape == (6,)


def test_gaia_on_celeba_files_then_attribute_sheet(capsys, tmp_path):
    from PIL import Image

    from aegen.cli import main
    from tests.conftest import fit_cli
    from tests.test_datasets import make_celeba

    root = make_celeba(tmp_path / "faces").parent
    ckpt = fit_cli(capsys, "--model", "gaia", "--data", "celeba", "--data.root", str(root), "--data.image_size", "64",
                   "--data.batch_size", "4", "--model.width", "8", "--trainer.max_steps", "2",
                   "--trainer.limit_val_batches", "1")
    out = tmp_path / "attr.png"
    assert main(["attribute", str(ckpt), "--attr", "Smiling", "--out", str(out)]) == 0
    with Image.open(out) as sheet:
        assert sheet.format == "PNG" and min(sheet.size) > 64
