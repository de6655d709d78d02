"""Fonts: items per second for a cold render, a disk-cache load, a memory-cache load, and batches served.

For each image size, builds fonts splits (``--num-items`` items from the full grid; default 20,000)
three times in a fresh data root: (1) cold, with every glyph and font cache cleared, so it draws
all glyph masks with FreeType and composites every image; (2) from the disk cache written by (1),
with the in-process cache cleared; (3) from the in-process cache. Then times epochs of
training batches from the in-memory loader (uint8 -> float in [-1, 1]; after one warm-up
epoch), which is all that training pays per step. Prints items/s for each (best of --repeats).

    python benchmarks/fonts_throughput.py [--sizes 32,64,128] [--num-items 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

import aegen.data.fonts as fonts


def _clear_caches(memory_only: bool = False) -> None:
    fonts._MEMORY.clear()
    if not memory_only:
        fonts.glyph_alpha.cache_clear()
        fonts._font.cache_clear()
        fonts._checked.cache_clear()


def _timed_setup(root: str, size: int, num_items: int) -> tuple[float, fonts.Fonts]:
    dm = fonts.Fonts(root=root, image_size=size, num_items=num_items)
    start = time.perf_counter()
    dm.setup("fit")
    return time.perf_counter() - start, dm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,128")
    parser.add_argument("--num-items", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, items per setup: {args.num_items}")
    print(f"{'size':>5} {'cold render':>14} {'disk cache':>14} {'memory cache':>14} {'loader batches':>15}  (items/s)")
    for size in (int(s) for s in args.sizes.split(",")):
        cold, disk, memory, loader = [], [], [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as root:
                _clear_caches()
                seconds, dm = _timed_setup(root, size, args.num_items)
                assert dm.loaded_from == "render"
                cold.append(seconds)
                _clear_caches(memory_only=True)
                seconds, dm = _timed_setup(root, size, args.num_items)
                assert dm.loaded_from == "disk"
                disk.append(seconds)
                seconds, dm = _timed_setup(root, size, args.num_items)
                assert dm.loaded_from == "memory"
                memory.append(seconds)
                batches = dm.train_dataloader()
                sum(len(x) for x, _ in batches)  # warm-up epoch
                for _ in range(2):
                    start = time.perf_counter()
                    served = sum(len(x) for x, _ in batches)
                    loader.append((time.perf_counter() - start) / served)
        n = args.num_items
        print(f"{size:>5} {n / min(cold):>14,.0f} {n / min(disk):>14,.0f} {n / min(memory):>14,.0f} {1 / min(loader):>15,.0f}")


if __name__ == "__main__":
    main()
