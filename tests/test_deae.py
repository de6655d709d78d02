"""DEAE and GSL: group sampling, swap losses, exploration, controllable-synthesis commands.

deae/gsl train only on factor data, so the shared per-model tests of tests/test_models.py (which
use digits) skip them; their equivalents on a tiny fonts grid are here (2-process DDP: in
tests/test_models.py, on the same grid).
"""

import json

import pytest
import torch

import aegen
from aegen.data.groups import GroupLoader, partner_indices
from aegen import presets
from aegen.errors import AegenError
from aegen.metrics import controllability as ctl
from aegen.metrics.judge import judge_path
from tests.conftest import fit_cli

SUBSET = "{letter: 3, font: 2, size: 2, font_colour: 2, background_colour: 2}"
TINY_BLOCKS = {"letter": 2, "font": 2, "size": 1, "font_colour": 1, "background_colour": 1}
DATA = ["--data", "fonts", "--data.image_size", "16", "--data.subset", SUBSET, "--data.num_items", "48",
        "--data.batch_size", "8"]
MODEL = ["--model.width", "8", "--model.blocks", "{letter: 2, font: 2, size: 1, font_colour: 1, background_colour: 1}"]


def fonts(**options):
    settings = {"image_size": 16, "batch_size": 8, "num_items": 48,
                "subset": {"letter": 3, "font": 2, "size": 2, "font_colour": 2, "background_colour": 2}}
    return aegen.get_data("fonts")(**{**settings, **options})


def test_group_partners_share_exactly_one_factor():
    dm = fonts(subset={"letter": 4, "font": 3, "size": 3, "font_colour": 3, "background_colour": 3}, num_items=400)
    images, labels = dm.split("train")
    anchors = torch.arange(len(labels))
    partners = partner_indices(labels, anchors, torch.Generator().manual_seed(0))  # (N, K)
    for k in range(labels.shape[1]):
        same = labels[partners[:, k]] == labels[anchors]
        assert same[:, k].all()
        assert same.sum(1).eq(1).all(), f"factor {k}: partners share more than their factor"
    # the loader's batches: anchors then one partner per factor, labels alongside
    loader = GroupLoader(images, labels, batch_size=16, seed=0)
    x, y = next(iter(loader))
    assert x.shape == (16, 6, 3, 16, 16) and y.shape == (16, 6, 5)
    assert x.min() >= -1 and x.max() <= 1
    for k in range(5):
        assert (y[:, 1 + k] == y[:, 0]).sum(1).eq(1).all() and (y[:, 1 + k, k] == y[:, 0, k]).all()
    torch.testing.assert_close(x[:, 0], images[y.new_tensor(list(loader.sampler))[:16]].float().div(127.5).sub(1))


def test_group_partners_respect_bias_and_share_as_little_as_the_data_allows():
    dm = fonts(subset={"letter": 4, "font": 3, "size": 3, "font_colour": 3, "background_colour": 3}, num_items=400,
               bias=["letter", "background_colour"])
    _, labels = dm.split("train")
    partners = partner_indices(labels, torch.arange(len(labels)), torch.Generator().manual_seed(1))
    anchor = labels
    letter = labels[partners[:, 0]]
    assert (letter[:, 0] == anchor[:, 0]).all()
    assert (letter[:, 4] == letter[:, 0] % 3).all()  # partners come from the biased training split
    assert ((letter == anchor).sum(1) == 2).all()  # letter fixes the background: no partner can differ there


def test_group_batches_refuse_data_without_factors():
    with pytest.raises(ValueError, match="factor labels"):
        GroupLoader(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), batch_size=2)
    dm = aegen.get_data("digits")(groups=True, batch_size=8)
    with pytest.raises(ValueError, match="factor labels"):
        dm.train_dataloader()


def test_swap_losses_on_a_tiny_model(trainer):
    torch.manual_seed(0)
    model = aegen.get_model("gsl")(img_shape=(3, 16, 16), blocks=TINY_BLOCKS, width=8).eval()
    x = fonts().tensors("train", 4)[0]
    # a group whose partners are the anchor itself: every swap and the composite are the reconstruction
    same = x[:, None].expand(4, 6, 3, 16, 16)
    losses, z = model.group_losses(same)
    torch.testing.assert_close(losses["swap"], losses["recon"])
    torch.testing.assert_close(losses["composite"], losses["recon"])
    # real groups: the swap losses differ from plain reconstruction, and training lowers them
    dm = fonts()
    model = aegen.get_model("gsl")(blocks=TINY_BLOCKS, width=8, lr=2e-3, img_shape=(3, 16, 16))
    dm.groups = True
    groups = next(iter(dm.train_dataloader()))[0]
    model.eval()
    before = model.group_losses(groups)[0]
    assert before["swap"] != before["recon"]
    trainer(30).fit(model, dm)
    model.eval()
    after = model.group_losses(groups)[0]
    assert after["swap"] < 0.7 * before["swap"], (before, after)
    assert after["composite"] < 0.7 * before["composite"]


def test_exploration_keeps_other_blocks_of_a_trained_model(trainer):
    torch.manual_seed(0)
    dm = fonts()
    model = aegen.get_model("deae")(blocks=TINY_BLOCKS, width=8, lr=2e-3, explore_weight=1.0, img_shape=(3, 16, 16))
    x = dm.tensors("train")[0]

    def drift() -> tuple[float, float]:
        """Mean squared change of the non-explored blocks after explore-decode-encode, and the code variance."""
        model.eval()
        with torch.no_grad():
            z = model.encode(x)
            other = z.roll(1, 0)
            ratios = []
            for name in model.blocks:
                mask = model.block_mask(name)
                moved = model.encode(model.decode(torch.where(mask, 0.5 * (z + other), z)))
                ratios.append(((moved - z)[:, ~mask] ** 2).mean() / z[:, ~mask].var(0).mean())
        return float(torch.stack(ratios).mean())

    before = drift()
    trainer(40).fit(model, dm)
    after = drift()
    assert after < 0.1 * before, (before, after)  # other blocks come back near the anchor's


def explore_model(**options):
    """A tiny eval-mode deae (tiny blocks, width 8) and a random group batch (4 anchors, 5 partners)."""
    torch.manual_seed(0)
    model = aegen.get_model("deae")(img_shape=(3, 16, 16), blocks=TINY_BLOCKS, width=8, **options).eval()
    return model, torch.rand(4, 6, 3, 16, 16) * 2 - 1


def explore_loss(model, z, seed=0, **options):
    """The exploration losses of group codes z with the model's noise seeded and options set on the model."""
    for name, value in options.items():
        setattr(model, name, value)
    model.noise.manual_seed(seed)
    return model.exploration_losses(z)


def test_default_exploration_draws_towards_another_anchor_once():
    model, x = explore_model()
    z = model.encode(x.flatten(0, 1)).unflatten(0, (4, 6))
    got = explore_loss(model, z)["explore"]
    # the same loss written out: one draw per block towards a random other anchor, mean squared error
    model.noise.manual_seed(0)
    anchor = z[:, 0]
    other = anchor[torch.randperm(4, generator=model.noise)]
    masks = torch.stack([model.block_mask(name) for name in model.blocks])
    drawn = anchor + torch.rand(5, 4, 7, generator=model.noise) * (other - anchor)
    explored = torch.where(masks[:, None], drawn, anchor)
    again = model.encode(model.decode(explored.flatten(0, 1))).unflatten(0, (5, 4))
    keep = ~masks[:, None].expand_as(again)
    torch.testing.assert_close(got, torch.nn.functional.mse_loss(again[keep], anchor.expand_as(again)[keep]))


def test_sum_reduction_sums_the_per_image_terms():
    model, x = explore_model(explore=["background_colour"], explore_partner="letter", explore_draws=3)
    mean, z = model.group_losses(x)
    model.reduction = "sum"
    summed = model.group_losses(x)[0]
    torch.testing.assert_close(summed["recon"], 6 * mean["recon"])  # the group's 6 images
    torch.testing.assert_close(summed["swap"], 10 * mean["swap"])  # 5 blocks, both directions
    torch.testing.assert_close(summed["composite"], mean["composite"])
    # 3 draws of one block: the sum of 3 mean squared errors is 3 times their mean; each draw is one
    # term, drawn in turn from the model's noise
    draws = explore_loss(model, z, reduction="sum")["explore"]
    torch.testing.assert_close(draws, 3 * explore_loss(model, z, reduction="mean")["explore"])
    model.explore_draws = 1
    model.noise.manual_seed(0)
    single = [model.exploration_losses(z)["explore"] for _ in range(3)]
    torch.testing.assert_close(draws, sum(single))


def test_letter_partner_explores_between_the_anchor_and_its_letter_partner():
    model, x = explore_model(explore=["background_colour"], explore_partner="letter")
    x[:, 1] = x[:, 0]  # the letter partner is the anchor: every draw is the anchor's own block
    z = model.encode(x.flatten(0, 1)).unflatten(0, (4, 6))
    keep = ~model.block_mask("background_colour")
    again = model.encode(model.decode(z[:, 0]))
    expected = torch.nn.functional.mse_loss(again[:, keep], z[:, 0, keep])
    torch.testing.assert_close(explore_loss(model, z)["explore"], expected)
    assert not torch.allclose(explore_loss(model, z, explore_partner="font")["explore"], expected)
    assert not torch.allclose(explore_loss(model, z, explore_partner=None)["explore"], expected)


def test_detach_target_only_changes_the_gradient():
    model, x = explore_model(explore=["background_colour"])
    z = model.encode(x.flatten(0, 1)).unflatten(0, (4, 6)).detach()
    grads, values = [], []
    for detach in (True, False):
        leaf = z.clone().requires_grad_()
        loss = explore_loss(model, leaf, detach_target=detach)["explore"]
        loss.backward()
        grads.append(leaf.grad[:, 0])
        values.append(loss.detach())
    torch.testing.assert_close(values[0], values[1])
    assert not torch.allclose(grads[0], grads[1])


def test_paper_preset_trains_a_few_steps(trainer):
    options = presets.options("deae", "paper")
    assert (options["explore_partner"], options["explore_draws"], options["detach_target"], options["reduction"]) == (
        "letter", 10, False, "sum")
    torch.manual_seed(0)
    model = aegen.get_model("deae")(**{**options, "blocks": TINY_BLOCKS, "latent_dim": None, "width": 8},
                                    img_shape=(3, 16, 16))
    trainer(3).fit(model, fonts())
    assert model.global_step > 0 and all(p.isfinite().all() for p in model.parameters())

def test_block_tools_and_inferred_blocks():
    codes = torch.arange(12.0).view(3, 4)
    others = -codes
    torch.testing.assert_close(ctl.edit_codes(codes, others, [1, 2])[:, [0, 3]], codes[:, [0, 3]])
    torch.testing.assert_close(ctl.edit_codes(codes, others, [1, 2])[:, [1, 2]], others[:, [1, 2]])
    path = ctl.explore_codes(codes, others, [3], 5)
    torch.testing.assert_close(path[:, 0], codes)
    torch.testing.assert_close(path[:, -1, 3], others[:, 3])
    torch.testing.assert_close(path[:, :, :3], codes[:, None, :3].expand(3, 5, 3))
    # a code whose dims 0-1 carry factor "b" and dim 2 factor "a", dim 3 noise won by one of them
    g = torch.Generator().manual_seed(0)
    factors = torch.randint(4, (2000, 2), generator=g)
    z = torch.stack([factors[:, 1].float(), factors[:, 1] * 2.0 + 1, factors[:, 0].float(),
                     factors[:, 0] + 0.01 * torch.randn(2000, generator=g)], dim=1)
    blocks = ctl.infer_blocks(z, factors, ["a", "b"])
    assert blocks == {"a": [2, 3], "b": [0, 1]}


def test_cli_fit_explore_edit_evaluate_and_round_trip(capsys, tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no judge cache but this test's data root
    ckpt = fit_cli(capsys, "--model", "deae", *DATA, *MODEL, "--trainer.max_steps", "8",
                   "--trainer.limit_val_batches", "1")
    assert ckpt.parent.parent.parent.name == "deae-fonts"
    from aegen.cli import main

    assert main(["explore", str(ckpt), "--factor", "background_colour", "--out", "ex.png", "--steps", "5", "--num", "3"]) == 0
    assert main(["edit", str(ckpt), "--factor", "font_colour", "--value", "yellow", "--out", "ed.png", "--num", "3"]) == 0
    from PIL import Image

    for png, rows, cols in (("ex.png", 3, 5), ("ed.png", 3, 3)):  # labelled columns: margins beyond the grid
        width, height = Image.open(png).size
        assert width > cols * 18 + 2 and height > rows * 18 + 2
    capsys.readouterr()
    assert main(["edit", str(ckpt), "--factor", "font_colour", "--value", "black", "--out", "x.png"]) == 2
    assert "--value for font_colour: an index 0..1; or a name: white, yellow" in capsys.readouterr().err
    assert main(["explore", str(ckpt), "--factor", "colour", "--out", "x.png"]) == 2
    assert "unknown factor 'colour'" in capsys.readouterr().err

    model = aegen.load(ckpt)
    x = fonts().tensors("test", 4)[0]
    assert model.sample(3).shape == (3, 3, 16, 16)
    path = model.interpolate(x[:2], x[2:], steps=3)
    torch.testing.assert_close(path[:, 0], model.reconstruct(x[:2]))
    again = type(model).load_from_checkpoint(ckpt, map_location="cpu").eval()
    torch.testing.assert_close(again.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    assert model.blocks["font"] == slice(2, 4)

    # controllability scores from a cold judge cache: evaluate trains the per-factor judges (inside
    # edit_scores' no_grad) and caches them; then the scores again with the cached judges
    judges_dir = tmp_path / "data" / "judges"
    assert not judges_dir.exists()
    assert main(["evaluate", str(ckpt), "--metrics", "edit,disentangle", "--out", "ev"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"edit_acc_target", "edit_acc_keep", "edit_acc", "mig", "dci_disentanglement"} <= set(metrics)
    assert len(list(judges_dir.glob("fonts.*.pt"))) == len(list(judges_dir.glob("fonts.*.json"))) == 4
    assert len(list(judges_dir.glob("fonts-*.pt"))) == 1  # the letter's: the class judge
    dm = fonts()
    judges = ctl.factor_judges(dm)
    assert set(judges) == set(dm.factor_names) and all("path" not in j.meta for j in judges.values())  # cached
    assert judges["letter"].meta["key"] == judge_path(dm).stem  # the class judge reads the letter
    scores = ctl.edit_scores(model, dm, judges=judges)
    assert {"edit_acc_target", "edit_acc_keep", "edit_acc", "recon_acc_keep", "edit_acc/letter", "real_acc_keep",
            "recon_acc/letter"} <= set(scores)
    assert all(0 <= v <= 1 for v in scores.values())
    assert scores["edit_acc"] <= min(scores["edit_acc_target"], scores["edit_acc_keep"]) + 1e-9
    assert scores["recon_acc_keep"] <= min(v for k, v in scores.items() if k.startswith("recon_acc/")) + 1e-9
    assert scores == {k: metrics[k] for k in scores}  # the same judges and seed as evaluate's
    ae = aegen.get_model("ae")(img_shape=(3, 16, 16), latent_dim=8, width=8).eval()
    blocks = ctl.factor_blocks(ae, dm)
    assert set(blocks) == set(dm.factor_names) and all(blocks.values())


def test_training_on_data_without_factors_is_a_one_line_error(capsys):
    from aegen.cli import main

    code = main(["fit", "--model", "gsl", "--trainer.accelerator", "cpu", "--trainer.max_steps", "1",
                 "--trainer.enable_progress_bar", "false", "--model.width", "8"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "aegen: error: gsl trains on a dataset with known factors (e.g. --data fonts); digits has none"
    with pytest.raises(ValueError, match="latent_dim 8 differs from the sum of --model.blocks"):
        aegen.get_model("deae")(latent_dim=8)
    with pytest.raises(ValueError, match="--model.explore takes block names"):
        aegen.get_model("deae")(explore=["colour"])
    with pytest.raises(ValueError, match="--model.explore_partner takes a block name"):
        aegen.get_model("deae")(explore_partner="colour")
    with pytest.raises(ValueError, match="--model.explore_draws must be >= 1"):
        aegen.get_model("deae")(explore_draws=0)
    model = aegen.get_model("gsl")(img_shape=(3, 16, 16), blocks=TINY_BLOCKS, width=8)
    with pytest.raises(AegenError, match="trains on group batches"):
        model.training_phases(torch.zeros(2, 3, 16, 16), torch.zeros(2, 5))
