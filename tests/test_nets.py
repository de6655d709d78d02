import pytest
import torch

from aegen.nets import MLP, ConvDecoder, ConvEncoder, EnsembleMLP, LatentDiscriminator


@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_nets_round_trip_shapes(size, channels):
    enc = ConvEncoder((channels, size, size), 10, width=8)
    dec = ConvDecoder((channels, size, size), 10, width=8)
    x = torch.randn(2, channels, size, size)
    z = enc(x)
    assert z.shape == (2, 10)
    assert enc.features(x).shape == (2, enc.feature_channels, 4, 4)
    out = dec(z)
    assert out.shape == x.shape
    assert out.abs().max() <= 1


@pytest.mark.parametrize("shape, match", [((1, 48, 48), "48x48"), ((2, 32, 32), "1 or 3"), ((1, 32, 16), "square"),
                                          ((32, 32), "channels, height, width")])
def test_unsupported_shapes_fail_at_construction(shape, match):
    with pytest.raises(ValueError, match=match):
        ConvEncoder(shape, 4)
    with pytest.raises(ValueError, match=match):
        ConvDecoder(shape, 4)


def test_unknown_norm_and_activation_are_named():
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        ConvEncoder((1, 32, 32), 4, norm="group")
    with pytest.raises(ValueError, match="unknown activation 'tanhh'"):
        MLP(3, [4], 2, activation="tanhh")


def test_mlp_and_latent_discriminator_shapes():
    assert MLP(3, [5, 6], 2, batch_norm=True, dropout=0.1)(torch.randn(4, 3)).shape == (4, 2)
    assert LatentDiscriminator(7, (9,))(torch.randn(5, 7)).shape == (5,)


def test_ensemble_mlp_members_are_independent_mlps_initialised_like_linear():
    torch.manual_seed(0)
    ensemble = EnsembleMLP(3, 4, (64,), 2, activation="leaky_relu")
    x = torch.randn(3, 5, 4)
    y = ensemble(x)
    assert y.shape == (3, 5, 2)
    for i in range(3):  # member i alone equals the same MLP written with nn.Linear
        first, last = ensemble.layers
        mlp = MLP(4, (64,), 2, activation="leaky_relu")
        with torch.no_grad():
            for linear, layer in zip((mlp[0], mlp[2]), (first, last)):
                linear.weight.copy_(layer.weight[i].T)
                linear.bias.copy_(layer.bias[i, 0])
        torch.testing.assert_close(y[i], mlp(x[i]))
        torch.testing.assert_close(ensemble(x[i], member=i), y[i])
    # one member's loss moves only that member's parameters
    ensemble(x)[1].sum().backward()
    assert ensemble.layers[0].weight.grad[[0, 2]].abs().sum() == 0 and ensemble.layers[0].weight.grad[1].abs().sum() > 0
    # nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
    assert ensemble.layers[0].weight.abs().max() <= 0.5 and ensemble.layers[1].weight.abs().max() <= 1 / 8
    assert ensemble.layers[1].weight.abs().max() > 0.1
