"""aegen's speed defaults against torch's: channels-last memory format and the fused Adam kernel on the CPU.

* training steps/s of each model through the Trainer ``aegen fit`` builds (``throughput.time_trainer``), at
  its defaults (channels-last weights and batches) and with ``--model.channels_last=false`` (torch's default
  layout), interleaved, best of ``--repeats``, and the ratio channels-last / default layout;
* the time of one Adam step over the ae's parameters (with gradients) with torch's fused kernel (aegen's
  default where torch has one) and with its multi-tensor (``foreach``) kernel, and their ratio.

Both compute the same functions; only the layout and the kernels differ.

    python benchmarks/memory_format.py [--models ae,vae,gaia] [--steps 100] [--warmup 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from throughput import time_trainer

from aegen.registry import get_model


def adam_step_ms(kernel: str, repeats: int, steps: int = 200) -> float:
    """Best-of-``repeats`` milliseconds per Adam step over a default ae's parameters, with ``kernel``."""
    params = list(get_model("ae")(img_shape=(1, 32, 32)).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    best = float("inf")
    for _ in range(repeats):
        optimizer = torch.optim.Adam(params, lr=1e-3, **{kernel: True})
        for _ in range(5):
            optimizer.step()
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.step()
        best = min(best, (time.perf_counter() - start) / steps * 1e3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ae,vae,gaia")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs on each side")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in args.models.split(","):
            last, default = 0.0, 0.0
            for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both sides
                last = max(last, time_trainer(name, args.steps, args.warmup, root))
                default = max(default, time_trainer(name, args.steps, args.warmup, root,
                                                    options=["--model.channels_last=false"]))
            rows.append((name, last, default))
    fused, foreach = adam_step_ms("fused", args.repeats), adam_step_ms("foreach", args.repeats)
    print(f"\n{'model':<8}{'channels-last steps/s':>23}{'default layout steps/s':>24}{'ratio':>8}")
    for name, last, default in rows:
        print(f"{name:<8}{last:>23.2f}{default:>24.2f}{last / default:>8.3f}")
    print(f"\nAdam step over the ae's parameters: fused {fused:.3f} ms, foreach {foreach:.3f} ms, "
          f"fused / foreach {fused / foreach:.3f}")


if __name__ == "__main__":
    main()
