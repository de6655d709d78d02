import torch

from aegen.latent import CodeGaussian, lerp, slerp


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


def test_code_gaussian_recovers_mean_and_covariance_from_batches():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0, 0.5])
    tril = torch.tensor([[1.0, 0, 0], [0.5, 0.3, 0], [-0.2, 0.1, 2.0]])
    codes = mean + torch.randn(20000, 3) @ tril.T
    g = CodeGaussian(3)
    torch.testing.assert_close(g.sample(4, torch.Generator().manual_seed(0)).shape, torch.Size([4, 3]))
    for chunk in codes.split(999):
        g.update(chunk)
    g.fit()
    torch.testing.assert_close(g.mean, mean, atol=0.05, rtol=0)
    torch.testing.assert_close(g.scale_tril @ g.scale_tril.T, tril @ tril.T, atol=0.08, rtol=0)
    samples = g.sample(20000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples.mean(0), mean, atol=0.06, rtol=0)


def test_code_gaussian_reduce_sums_statistics_like_ddp():
    a, b = torch.randn(50, 2), torch.randn(70, 2) + 3
    g1, g2 = CodeGaussian(2), CodeGaussian(2)
    g1.update(a)
    g2.update(b)
    other = g2._stats.clone()
    g1.fit(reduce=lambda t: t + other)  # what an all-reduce sum over two ranks returns
    torch.testing.assert_close(g1.mean, torch.cat([a, b]).mean(0))
