import torch

from aegen.latent import encode_all, encode_batches, lerp, slerp


def test_interpolation_endpoints_are_the_inputs():
    z1, z2 = torch.randn(3, 5), torch.randn(3, 5)
    for path in (lerp(z1, z2, 7), slerp(z1, z2, 7)):
        assert path.shape == (3, 7, 5)
        torch.testing.assert_close(path[:, 0], z1)
        torch.testing.assert_close(path[:, -1], z2)
    torch.testing.assert_close(lerp(z1, z2, 3)[:, 1], (z1 + z2) / 2)


def test_slerp_of_parallel_codes_falls_back_to_lerp():
    z = torch.randn(2, 4)
    torch.testing.assert_close(slerp(z, 2 * z, 5), lerp(z, 2 * z, 5))


def test_neighbour_path_walks_through_the_data_and_ends_at_the_endpoints():
    from aegen.latent import neighbour_path, path_codes

    angles = torch.linspace(0, 3.1416, 40)
    codes = torch.stack([angles.cos(), angles.sin()], 1)  # a half circle: the straight line leaves the data
    path = neighbour_path(codes, 0, 39, k=3)
    assert path[0] == 0 and path[-1] == 39 and path == sorted(path)
    walk = path_codes(codes, path, 9)
    torch.testing.assert_close(walk[0], codes[0])
    torch.testing.assert_close(walk[-1], codes[39])
    assert walk.norm(dim=1).min() > 0.99  # stays on the circle, unlike lerp through the centre


def test_neighbour_path_reports_disconnected_graphs():
    import pytest

    from aegen.latent import neighbour_path

    codes = torch.cat([torch.zeros(5, 2) + torch.arange(5.0)[:, None] * 1e-3, torch.full((5, 2), 100.0)])
    with pytest.raises(ValueError, match="larger k"):
        neighbour_path(codes, 0, 9, k=2)


def test_attribute_vectors_recover_a_planted_direction():
    from aegen.latent import attribute_vectors

    torch.manual_seed(0)
    attributes = torch.randint(0, 2, (400, 3)).float()
    directions = torch.randn(3, 8)
    codes = 5 + torch.randn(400, 8) * 0.05 + attributes @ directions
    torch.testing.assert_close(attribute_vectors(codes, attributes), directions, atol=0.02, rtol=0)


def test_attribute_table_uses_attributes_factors_or_classes():
    from types import SimpleNamespace

    from aegen.latent import attribute_table
    from aegen.registry import get_data

    names, table = attribute_table(get_data("digits")(), torch.tensor([3, 0]))
    assert names[3] == "class=3" and table[0, 3] == 1 and table[0].sum() == 1
    factors = SimpleNamespace(attribute_names=None, factor_names=["a", "b"], factor_sizes=[2, 3])
    names, table = attribute_table(factors, torch.tensor([[1, 2]]))
    assert names == ["a=0", "a=1", "b=0", "b=1", "b=2"] and table.tolist() == [[0, 1, 0, 0, 1]]
    celeb = SimpleNamespace(attribute_names=["Smiling", "Male"])
    assert attribute_table(celeb, torch.tensor([[1, 0]]))[0] == ["Smiling", "Male"]


def test_encode_all_encodes_in_batches_onto_the_requested_device():
    class Halves:  # a stand-in model: its code is half of each flattened image
        device = torch.device("cpu")

        def __init__(self):
            self.batches = []

        def encode(self, x):
            self.batches.append(len(x))
            return x.flatten(1) / 2

    images = torch.randn(7, 1, 2, 2)
    model = Halves()
    codes = encode_all(model, images, batch_size=3, device="cpu")
    assert model.batches == [3, 3, 1] and codes.device.type == "cpu"
    torch.testing.assert_close(codes, images.flatten(1) / 2, rtol=0, atol=0)
    assert encode_all(model, images).device == model.device


def test_encode_batches_uses_eval_mode_stops_at_max_items_and_restores_the_mode():
    torch.manual_seed(0)

    class Model(torch.nn.Module):  # its code is the flattened image, dropped out in training mode
        device = torch.device("cpu")

        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5))

        def encode(self, x):
            return self.net(x)

    model = Model().train()
    images = torch.randn(10, 1, 2, 2)
    batches = [(x, None) for x in images.split(4)]
    codes = encode_batches(model, batches, max_items=5)
    assert model.training and codes.shape == (8, 4)  # two batches reach 5 items
    torch.testing.assert_close(codes, images[:8].flatten(1), rtol=0, atol=0)  # no dropout: eval mode
