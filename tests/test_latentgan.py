"""LatentGAN, InfoGAN and the clustering AAE: the InfoGAN term, cluster heads, fixed categories, traversals."""

import math

import pytest
import torch
import torch.nn.functional as F

import aegen
from aegen import presets
from aegen.cli import main
from aegen.errors import AegenError
from aegen.losses import information_loss
from tests.conftest import fit_cli

CLUSTER_MODELS = ("latentgan", "infogan", "aae_cluster")
TINY = {"latent_dim": 8, "width": 8}


def test_information_loss_on_known_tensors():
    # Q puts probabilities (1/2, 1/4, 1/4) on three categories: CE is log 2 for category 0, log 4 for 1
    logits = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]).log()
    ce, mse = information_loss(logits, torch.tensor([0, 1]), torch.tensor([[0.0, 1.0]] * 2), torch.tensor([[1.0, 1.0]] * 2))
    torch.testing.assert_close(ce, torch.tensor((math.log(2) + math.log(4)) / 2))
    torch.testing.assert_close(mse, torch.tensor(0.5))
    # several categorical codes: the cross-entropies add up; no continuous codes: zero
    ce2, mse2 = information_loss([logits, logits], torch.tensor([[0, 0], [1, 1]]))
    torch.testing.assert_close(ce2, 2 * ce)
    assert mse2.item() == 0.0
    with pytest.raises(ValueError, match="2 categorical heads but 1"):
        information_loss([logits, logits], torch.tensor([0, 1]))


@pytest.mark.parametrize("name", CLUSTER_MODELS)
def test_cluster_probs_are_distributions_over_k_clusters(name):
    options = {"num_clusters": 7} if name == "aae_cluster" else {"num_categories": 7}
    model = aegen.get_model(name)(**TINY, **options).eval()
    probs = model.cluster_probs(torch.rand(5, 1, 32, 32) * 2 - 1)
    assert probs.shape == (5, 7)
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(5))


@pytest.mark.parametrize("name", CLUSTER_MODELS)
def test_sample_with_a_fixed_category(name):
    model = aegen.get_model(name)(**TINY).eval()
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    fixed = model.sample(4, gen(), category=3)
    assert fixed.shape == (4, 1, 32, 32)
    torch.testing.assert_close(model.sample(4, gen(), category=3), fixed, rtol=0, atol=0)
    assert not torch.equal(model.sample(4, gen(), category=4), fixed)  # the category reaches the image
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.sample(2, category=10)


def test_sample_category_needs_a_categorical_code():
    model = aegen.get_model("ae")(**TINY).eval()
    assert model.sample(2, torch.Generator().manual_seed(0), category=None).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="no categorical code"):
        model.sample(2, category=1)


def test_infogan_and_latentgan_draw_their_codes_alike():
    infogan = aegen.get_model("infogan")(**TINY)
    latentgan = aegen.get_model("latentgan")(**TINY, noise_dim=8, num_categorical=1, num_categories=10,
                                             num_continuous=2)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    z, c, u = infogan.sample_codes(5, category=torch.arange(5), generator=gen())
    noise, cats, cont = latentgan.sample_codes(5, category=torch.arange(5), generator=gen())
    assert c.shape == (5,) and cats.shape == (5, 1)
    assert torch.equal(z, noise) and torch.equal(c, cats[:, 0]) and torch.equal(u, cont)
    assert c.tolist() == list(range(5)) and u.abs().max() <= 1.0


def test_latentgan_sample_codes_fix_category_and_continuous_codes():
    model = aegen.get_model("latentgan")(**TINY, num_categorical=2, num_continuous=3)
    noise, c, u = model.sample_codes(6, category=torch.arange(6) % 4, continuous=torch.tensor([0.5, -1.0, 0.0]))
    assert noise.shape == (6, model.noise_dim) and c.shape == (6, 2) and u.shape == (6, 3)
    assert c[:, 0].tolist() == [0, 1, 2, 3, 0, 1]
    assert (u == torch.tensor([0.5, -1.0, 0.0])).all()
    _, c, u = model.sample_codes(2000)
    assert set(c.flatten().tolist()) == set(range(10)) and u.abs().max() <= 1.0


def test_latentgan_code_standardisation_round_trips_and_tracks_the_codes():
    model = aegen.get_model("latentgan")(**TINY, code_momentum=0.5)
    codes = torch.randn(64, 8) * 0.03 + 2.0
    model.update_code_stats(codes)  # the first batch sets the statistics exactly
    torch.testing.assert_close(model.code_mean, codes.mean(0))
    torch.testing.assert_close(model.code_std, codes.std(0).square().mean().sqrt().expand(8))
    z = model.to_gan_space(codes)
    torch.testing.assert_close(z.mean(0), torch.zeros(8), atol=1e-4, rtol=0)  # float32 cancellation near 2.0
    torch.testing.assert_close(model.from_gan_space(z), codes)
    model.update_code_stats(codes + 1.0)  # then an exponential moving average
    torch.testing.assert_close(model.code_mean, codes.mean(0) + 0.5)
    paper = aegen.get_model("latentgan")(**TINY, standardize_codes=False)
    torch.testing.assert_close(paper.to_gan_space(codes), codes)


def test_latentgan_global_code_scale_keeps_the_codes_shape():
    model = aegen.get_model("latentgan")(**TINY)
    codes = torch.randn(4096, 8) * torch.tensor([0.01, 0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 0.1]) + 2.0
    model.update_code_stats(codes)
    z = model.to_gan_space(codes)
    torch.testing.assert_close(z.square().mean(), torch.tensor(1.0), atol=1e-2, rtol=0)  # unit size overall
    torch.testing.assert_close(z.std(0)[4:] / z.std(0)[:4], torch.full((4,), 10.0), rtol=0.1, atol=0)  # same ratios
    torch.testing.assert_close(model.from_gan_space(z), codes)


def test_latentgan_noisy_labels():
    model = aegen.get_model("latentgan")(**TINY, label_smoothing=0.1, label_flip=0.0)
    logits = torch.zeros(3, 100)  # D's logits for 3 restarts: one target each
    assert (model.noisy_labels(logits, real=True) == 0.9).all() and (model.noisy_labels(logits, real=False) == 0).all()
    assert model.noisy_labels(logits, real=True).shape == (3, 100)
    model = aegen.get_model("latentgan")(**TINY, label_smoothing=0.0, label_flip=0.2)
    fake = model.noisy_labels(torch.zeros(20000), real=False)
    assert set(fake.unique().tolist()) == {0.0, 1.0}
    assert abs(fake.mean().item() - 0.2) < 0.02


PRESETS = {"paper": (1, 32), "paper_chairs": (1, 64), "paper_celeba": (3, 32), "conv": (1, 32)}  # image shapes


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_builds_a_model_whose_attributes_are_its_options(name):
    channels, size = PRESETS[name]
    assert (presets.load("latentgan", name).get("data") or {}).get("init_args", {}).get("image_size", 32) == size
    options = presets.options("latentgan", name)
    with torch.device("meta"):  # Tables 3 and 4's 3000-unit MLPs, without their memory
        model = aegen.get_model("latentgan")(img_shape=(channels, size, size), **options)
        assert model.reconstruct(torch.zeros(2, channels, size, size)).shape == (2, channels, size, size)
    for key, value in options.items():
        assert getattr(model, key) == value, key
    assert set(presets.catalogue()["latentgan"]) == {"default", *PRESETS}


def test_paper_presets_have_the_papers_sizes():
    from torch import nn

    model = aegen.get_model("latentgan")(**presets.options("latentgan", "paper"))  # Table 2
    gans = model.gans
    assert gans.generators.layers[0].weight.shape == (1, 76, 1000) and model.latent_dim == 64
    assert [layer.weight.shape[-1] for layer in gans.generators.layers] == [1000, 1000, 1000, 64]
    assert [layer.weight.shape[-1] for layer in gans.discriminators.trunk.layers] == [1000, 1000, 512]
    assert gans.discriminators.heads.weight.shape == (1, 512, 1 + 10 + 2)
    assert [m.out_channels for m in model.encoder if isinstance(m, nn.Conv2d)] == [16, 32, 64, 128, 128]
    assert [m.out_channels for m in model.decoder if isinstance(m, nn.Conv2d)] == [128, 64, 32, 1]
    assert model.encode(torch.zeros(2, 1, 32, 32)).shape == (2, 64)
    assert model.decode(torch.zeros(2, 64)).shape == (2, 1, 32, 32)
    assert (model.lambda_disc, model.lambda_cont, model.lr, model.gan_lr, model.betas) == (0.1, 1.0, 2e-4, 2e-4, (0.5, 0.9))
    assert (model.restarts, model.gan_steps, model.standardize_codes, model.noise_dim) == (1, 1, False, 64)
    assert presets.load("latentgan", "paper")["data"]["init_args"] == {"image_size": 32, "batch_size": 128}
    with torch.device("meta"):
        chairs = aegen.get_model("latentgan")(img_shape=(1, 64, 64), **presets.options("latentgan", "paper_chairs"))
        celeba = aegen.get_model("latentgan")(img_shape=(3, 32, 32), **presets.options("latentgan", "paper_celeba"))
    assert chairs.gans.generators.layers[0].weight.shape == (1, 190, 3000)  # Table 3
    assert chairs.gans.discriminators.heads.weight.shape == (1, 512, 1 + 3 * 20 + 2) and chairs.lambda_disc == 10
    assert celeba.gans.generators.layers[0].weight.shape == (1, 228, 3000) and celeba.lambda_disc == 1.0  # Table 4
    assert celeba.gans.discriminators.heads.weight.shape == (1, 512, 1 + 10 * 10)
    small = {"disc_hidden": (16, 8), "gen_hidden": (16,)}
    with pytest.raises(ValueError, match="needs an image size divisible by 64, got 32: pass --data.image_size 64"):
        aegen.get_model("latentgan")(img_shape=(1, 32, 32), **{**presets.options("latentgan", "paper_chairs"), **small})
    with pytest.raises(ValueError, match="makes 32x32 images, got 64x64: pass --data.image_size 32"):
        aegen.get_model("latentgan")(img_shape=(3, 64, 64), **{**presets.options("latentgan", "paper_celeba"), **small})


def test_defaults_scale_table_2s_autoencoder_to_any_size():
    from aegen.models.latentgan import table2_widths
    from aegen.nets import ConvEncoder

    paper, default = aegen.get_model("latentgan")(**presets.options("latentgan", "paper")), aegen.get_model("latentgan")()
    assert default.latent_dim == 64 and str(default.encoder) == str(paper.encoder) and str(default.decoder) == str(paper.decoder)
    assert table2_widths(64, 32) == ((16, 32, 64, 128, 128, 128), (128, 128, 64, 32))
    for size, channels in ((16, 3), (64, 1), (128, 3)):
        model = aegen.get_model("latentgan")(img_shape=(channels, size, size), width=8, restarts=1)
        assert model.reconstruct(torch.zeros(2, channels, size, size)).shape == (2, channels, size, size)
    conv = aegen.get_model("latentgan")(**presets.options("latentgan", "conv"))
    assert isinstance(conv.encoder, ConvEncoder) and conv.latent_dim == 16 and conv.restarts == 16
    # the learning rates: 1e-3 for every player by default, the paper's 2e-4 for all in its presets,
    # conv's autoencoder at 2e-4 under a latent GAN at 1e-3
    assert (default.lr, default.gan_lr, paper.lr, paper.gan_lr, conv.lr, conv.gan_lr) == (1e-3, 1e-3, 2e-4, 2e-4, 2e-4, 1e-3)
    assert [group["lr"] for opt in default.configure_optimizers() for group in opt.param_groups] == [1e-3] * 3
    assert [group["lr"] for opt in conv.configure_optimizers() for group in opt.param_groups] == [2e-4, 1e-3, 1e-3]
    with pytest.raises(ValueError, match="arch conv"):
        aegen.get_model("latentgan")(arch="conv", encoder_channels=(8, 8))
    with pytest.raises(ValueError, match="restarts must be at least 1"):
        aegen.get_model("latentgan")(restarts=0)


def test_a_checkpoint_with_the_old_preset_option_fails_in_one_line(tmp_path):
    import pytorch_lightning as pl

    from tests.test_models import TinyBatch

    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(aegen.get_model("latentgan")(**TINY, restarts=2, gan_steps=1), TinyBatch(batch_size=8))
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    assert aegen.load(tmp_path / "new.ckpt").restarts == 2
    old = torch.load(tmp_path / "new.ckpt", weights_only=True)
    old["hyper_parameters"].update(preset="generic", noise_dim=None, gan_steps=None, lr=None)
    for key in ("arch", "encoder_channels", "decoder_channels"):
        del old["hyper_parameters"][key]
    old["aegen"]["version"] = "0.2.0"
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(AegenError, match="written by aegen 0.2.0") as err:
        aegen.load(tmp_path / "old.ckpt")
    assert "\n" not in str(err.value)


def test_an_infogan_checkpoint_from_before_trunk_norm_loads_with_its_normalised_trunk(tmp_path):
    import pytorch_lightning as pl

    from tests.test_models import TinyBatch

    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    model = aegen.get_model("infogan")(**TINY, trunk_norm=True)
    trainer.fit(model, TinyBatch(batch_size=8))
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    old = torch.load(tmp_path / "new.ckpt", weights_only=True)
    del old["hyper_parameters"]["trunk_norm"]  # saved by aegen <= 0.3.0, which always normalised it
    torch.save(old, tmp_path / "old.ckpt")
    loaded = aegen.load(tmp_path / "old.ckpt")
    assert isinstance(loaded.trunk[1], torch.nn.BatchNorm1d)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded.encode(x), model.eval().encode(x))
    assert isinstance(aegen.get_model("infogan")(**TINY).trunk[1], torch.nn.Identity)  # the default now


def test_latentgan_traversal_rows_are_categories_and_columns_sweep_a_continuous_code():
    model = aegen.get_model("latentgan")(**TINY, num_categories=4).eval()
    sheet = model.traversal(steps=5, generator=torch.Generator().manual_seed(0))
    assert sheet.shape == (4, 5, 1, 32, 32)
    # the middle column (u = 0) of row k is G(P_k, c = k, u = 0) decoded
    noise, _, _ = model.sample_codes(4, torch.arange(4), generator=torch.Generator().manual_seed(0))
    expected = model.decode(model.generate(noise, torch.arange(4)[:, None], torch.zeros(4, 2)))
    torch.testing.assert_close(sheet[:, 2], expected)
    assert model.traversal(steps=3, code=1).shape == (4, 3, 1, 32, 32)
    with pytest.raises(ValueError, match="continuous code 2 does not exist"):
        model.traversal(code=2)
    no_continuous = aegen.get_model("latentgan")(**TINY, num_categories=3, num_continuous=0).eval()
    assert no_continuous.traversal(steps=4).shape == (3, 4, 1, 32, 32)


@pytest.mark.parametrize("name", ("infogan", "aae_cluster", "ae"))
def test_per_dimension_traversal_passes_through_the_image_code(name):
    model = aegen.get_model(name)(**TINY).eval()
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    dims = model.encode(x).shape[1]
    sheet = model.traversal(x, steps=5)
    assert sheet.shape == (dims, 5, 1, 32, 32)
    for row in sheet[:, 2]:  # the middle column is the unchanged code
        torch.testing.assert_close(row, model.reconstruct(x)[0], atol=1e-5, rtol=1e-4)
    assert model.traversal(steps=3, code=0).shape == (1, 3, 1, 32, 32)


def test_aegen_traverse_writes_the_category_sheet(capsys, tmp_path):
    ckpt = fit_cli(capsys, "--model", "latentgan", "--model.latent_dim", "8", "--model.width", "8",
                   "--model.gan_steps", "1", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                   "--trainer.limit_val_batches", "1", "--data.batch_size", "16")
    # validation matched the categories to the digit classes, and the checkpoint carries the match
    assert sorted(aegen.load(ckpt).class_categories.tolist()) == list(range(10))
    assert aegen.load(ckpt).sample_conditional(3, torch.tensor([0, 5, 9])).shape == (3, 1, 32, 32)
    assert main(["traverse", str(ckpt), "--out", "t.png", "--steps", "7"]) == 0
    from PIL import Image

    width, height = Image.open("t.png").size  # 10 categories x 7 values of u_0, labelled in margins
    assert width > 2 + 7 * 34 and height > 2 + 10 * 34
    assert main(["traverse", str(ckpt), "--code", "5"]) != 0
    assert "continuous code 5 does not exist" in capsys.readouterr().err


def test_latentgan_clusters_come_from_q_on_the_encoder_codes():
    model = aegen.get_model("latentgan")(**TINY).eval()
    x = torch.rand(6, 1, 32, 32) * 2 - 1
    logits = model.discriminator(model.to_gan_space(model.encode(x)))[1][0]
    torch.testing.assert_close(model.cluster_probs(x), F.softmax(logits, -1))


def test_latentgan_samples_classes_through_categories_matched_on_labelled_images():
    model = aegen.get_model("latentgan")(**TINY, num_classes=4, num_categories=4).eval()
    assert model.sample_conditional(3, torch.tensor([0, 1, 2])) is None  # nothing matched yet
    labels = torch.arange(40) % 4
    category_of = torch.tensor([2, 0, 3, 1])  # Q puts class k in category category_of[k], with 3 mistakes
    clusters = category_of[labels].clone()
    clusters[:3] = (clusters[:3] + 1) % 4
    model.cluster_probs = lambda x: F.one_hot(clusters[x[:, 0, 0, 0].long()], 4).float()
    images = torch.arange(40).float().view(40, 1, 1, 1).expand(40, 1, 32, 32)
    assert model.match_categories(images, labels, batch_size=16).tolist() == category_of.tolist()
    classes = torch.tensor([0, 1, 2, 3, 3])
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    torch.testing.assert_close(model.sample_conditional(5, classes, gen()), model.sample(5, gen(), category=category_of[classes]))


def test_latentgan_ae_epochs_train_the_autoencoder_alone_first(tmp_path):
    import pytorch_lightning as pl

    from tests.test_models import TinyBatch

    model = aegen.get_model("latentgan")(**TINY, ae_epochs=2, gan_steps=1)
    gan_before = [p.detach().clone() for p in model.gans.parameters()]
    enc_before = [p.detach().clone() for p in model.encoder.parameters()]
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model, TinyBatch(batch_size=8))
    assert all(torch.equal(a, b) for a, b in zip(gan_before, model.gans.parameters()))  # no GAN update during the AE epochs
    assert not all(torch.equal(a, b) for a, b in zip(enc_before, model.encoder.parameters()))
    assert trainer.global_step == 4  # 2 epochs x 2 batches, one autoencoder step each


def test_latentgan_keeps_the_restart_whose_q_is_most_informative_on_real_codes():
    model = aegen.get_model("latentgan")(**TINY, num_categories=4, restarts=3)
    gans = model.gans
    assert gans.generators.members == 3 and gans.kept == 0
    # this epoch's Q(c | Enc(X)) on two real codes, per restart: 0 is confident but puts both codes
    # in one category (I = 0), 1 is confident and balanced (I = log 2), 2 is unsure (I = 0)
    per_restart = [torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]), torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]),
                   torch.full((2, 4), 0.25)]
    gans.record(torch.stack(per_restart).clamp_min(1e-30).log())
    torch.testing.assert_close(gans.information(), torch.tensor([0.0, math.log(2), 0.0]), atol=1e-5, rtol=0)
    doubled = gans.information(lambda t: 2 * t)  # the sums of two processes: the same distributions
    torch.testing.assert_close(doubled, gans.information())
    gans.keep_most_informative()
    assert gans.kept == 1
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    z = model.to_gan_space(model.encode(x))
    everyone = model.discriminator(gans.each(z))[1][0]
    torch.testing.assert_close(model.cluster_logits(x), everyone[1])  # the kept restart's Q, computed alone
    assert not torch.allclose(everyone[0], everyone[1])
    assert [p.shape for p in model.restart_probs(x)] == [(3, 4)] * 3
    noise, c, u = model.sample_codes(3)
    onehot = torch.nn.functional.one_hot(c, 4).flatten(1).float()
    torch.testing.assert_close(model.gan_codes(noise, c, u), gans.generators(gans.each(torch.cat([noise, onehot, u], 1)))[1])
    # the paper's single latent GAN records nothing and keeps restart 0
    single = aegen.get_model("latentgan")(**TINY, restarts=1)
    single.gans.record(torch.zeros(1, 2, 10))
    assert single.gans.information() is None and single.gans.kept == 0


def test_latentgan_trains_every_restart_and_records_its_clusters():
    import pytorch_lightning as pl

    from tests.test_models import TinyBatch

    model = aegen.get_model("latentgan")(**TINY, restarts=2, gan_steps=1)
    before = [p.detach().clone() for p in model.gans.parameters()]
    seen = []
    model.on_train_epoch_end = lambda: seen.append(model.gans.q_sums.clone())  # noqa: E731  (the sums before the reset)
    pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_val_batches=0).fit(model, TinyBatch(batch_size=8))
    assert all(not torch.equal(a, b) for a, b in zip(before, model.gans.parameters()))  # every restart's G and D/Q learned
    (sums,) = seen
    assert sums[:, -1].tolist() == [16.0, 16.0]  # 2 batches of 8 real codes per restart
    torch.testing.assert_close(sums[:, :-2].sum(1), sums[:, -1])  # Q's probabilities sum to one per code
    assert model.training_state()["q_sums"] is model.gans.q_sums


def test_latentgan_restarts_are_chosen_from_every_process_under_ddp(tmp_path):
    from tests.conftest import run_aegen

    result = run_aegen("fit", "--model", "latentgan", "--model.width", "8", "--model.restarts", "2", "--model.gan_steps", "1",
                       "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.max_epochs", "2",
                       "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--data.batch_size", "16",
                       "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics,) = (tmp_path / "runs").glob("*/version_*/metrics.csv")
    header, *rows = [line.split(",") for line in metrics.read_text().splitlines()]
    kept = [row[header.index("train/kept_restart")] for row in rows if row[header.index("train/kept_restart")]]
    assert len(kept) == 2 and set(kept) <= {"0.0", "1.0"}  # one choice per epoch, from the summed statistics
