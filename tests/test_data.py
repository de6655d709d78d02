import pytest
import torch

from aegen.data.base import InMemoryLoader, random_split_indices
from aegen.registry import get_data


def test_digits_shapes_range_labels_and_fixed_disjoint_splits():
    dm = get_data("digits")()
    dm.setup("fit")
    assert dm.img_shape == (1, 32, 32) and dm.num_classes == 10
    sizes = {name: len(dm.split(name)[0]) for name in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sizes["val"] == sizes["test"] == 180
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    assert y.dtype == torch.long and set(y.tolist()) <= set(range(10))
    again = get_data("digits")()
    torch.testing.assert_close(again.split("test")[0], dm.split("test")[0])
    images = {tuple(img.flatten().tolist()) for name in ("train", "val", "test") for img in dm.split(name)[0][:50]}
    assert len(images) > 140  # no split repeats the same first images


def test_digits_other_size_and_seed():
    dm = get_data("digits")(image_size=16, split_seed=3)
    assert dm.tensors("train", 5)[0].shape == (5, 1, 16, 16)
    assert not torch.equal(dm.split("test")[1], get_data("digits")().split("test")[1])


def test_bad_fractions_and_batch_size():
    with pytest.raises(ValueError, match="val_fraction"):
        get_data("digits")(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="batch_size"):
        get_data("digits")(batch_size=0)


def test_random_split_is_a_partition():
    parts = random_split_indices(101, (0.8, 0.1, 0.1), seed=0)
    assert sorted(torch.cat(parts).tolist()) == list(range(101))
    assert [len(p) for p in parts] == [81, 10, 10]


def test_in_memory_loader_shards_ranks_and_reshuffles_per_epoch():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    labels = torch.arange(10)
    ranks = [InMemoryLoader(images, labels, 2, shuffle=True, drop_last=False, rank=r, world_size=2) for r in (0, 1)]
    seen = [torch.cat([y for _, y in loader]) for loader in ranks]
    assert sorted(torch.cat(seen).tolist()) == list(range(10)) and len(ranks[0]) == 3
    ranks[0].sampler.set_epoch(1)
    assert not torch.equal(torch.cat([y for _, y in ranks[0]]), seen[0])
    train = InMemoryLoader(images, labels, 4, shuffle=False, drop_last=True)
    batches = list(train)
    assert len(train) == len(batches) == 2
    x, y = batches[0]
    torch.testing.assert_close(x[:, 0, 0, 0], y.float() / 127.5 - 1)


def _attached(dm, accelerator: str):
    """``dm`` with a (not fitted) trainer on ``accelerator``, as Lightning attaches it."""
    import pytorch_lightning as pl

    dm.trainer = pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_progress_bar=False)
    return dm


def test_pin_memory_and_device_cache_leave_cpu_training_unchanged():
    plain = _attached(get_data("digits")(batch_size=32, pin_memory=False), "cpu")
    fast = _attached(get_data("digits")(batch_size=32, pin_memory=True, device_cache=True), "cpu")
    loader = fast.train_dataloader()
    assert not loader.pin_memory  # pinning is for batches bound for a CUDA device
    assert fast.train_dataloader().images is loader.images  # the device copy is made once
    for (x, y), (x2, y2) in zip(plain.train_dataloader(), loader):
        assert not x2.is_pinned()
        torch.testing.assert_close(x2, x, rtol=0, atol=0)
        torch.testing.assert_close(y2, y, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned batches and the device cache are for CUDA")
def test_batches_are_pinned_for_cuda_and_device_cached_data_is_indexed_on_the_device():
    pinned = _attached(get_data("digits")(batch_size=32, pin_memory=True), "gpu")
    x, y = next(iter(pinned.train_dataloader()))
    assert x.is_pinned() and y.is_pinned() and x.device.type == "cpu"
    assert next(iter(pinned.val_dataloader()))[0].is_pinned()
    cached = _attached(get_data("digits")(batch_size=32, device_cache=True), "gpu")
    loader = cached.train_dataloader()
    x2, y2 = next(iter(loader))
    assert loader.images.is_cuda and x2.is_cuda and y2.is_cuda and not loader.pin_memory
    assert cached.train_dataloader().images is loader.images
    torch.testing.assert_close(x2.cpu(), x, rtol=0, atol=0)
