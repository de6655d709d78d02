"""FID + IS time: aegen's evaluation path vs calling torch-fidelity directly on the same samples.

aegen: ``aegen.metrics.fidelity.fidelity`` on ``model_samples`` (samples generated chunk by chunk
while torch-fidelity reads them) against the digits training split (``SplitImages``).
direct: the same samples, generated beforehand into one uint8 tensor, and the same training
images, passed to ``torch_fidelity.calculate_metrics`` as plain tensor Datasets.

Both compute FID and IS with one feature extractor: ``inception`` (torch-fidelity's
InceptionV3; ``--inception-weights random`` builds a randomly initialised one in the official
layout: the same network and cost, meaningless values) or ``judge`` (aegen's digits judge). The
model is an untrained ``ae`` (the timing does not depend on its weights). Prints the best of
``--repeats`` wall times per path, the ratio aegen / direct, and checks both gave the same numbers.

    python benchmarks/fidelity.py --num-samples 10000 --features judge
    python benchmarks/fidelity.py --num-samples 64 --num-reference 64 --features inception --inception-weights random
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset

import aegen
from aegen.data.digits import Digits
from aegen.metrics import fidelity
from aegen.metrics.judge import FEATURE_EXTRACTOR, get_judge, judge_path


class Tensors(Dataset):
    """uint8 images (N, C, H, W) as a Dataset: what a user calling torch-fidelity directly would write."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--num-reference", type=int, default=None, help="training images used (default: all 1437)")
    parser.add_argument("--features", choices=("inception", "judge"), default="inception")
    parser.add_argument("--inception-weights", default="random", help="a weights file, or 'random'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-root", default=None, help="where the digits judge is cached (default: $AEGEN_DATA)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = aegen.get_model("ae")(img_shape=(1, 32, 32), num_classes=10).to(args.device).eval()
    datamodule = Digits(root=args.data_root)
    rgb = args.features == "inception"
    with tempfile.TemporaryDirectory() as tmp:
        if args.features == "inception":
            weights = Path(args.inception_weights)
            if args.inception_weights == "random":
                weights = Path(tmp) / fidelity.INCEPTION_FILE
                torch.save(fidelity.random_inception_state_dict(), weights)
            weights, extractor, suffix = fidelity.inception_weights(weights), fidelity.INCEPTION, ""
        else:
            get_judge(datamodule)
            weights, extractor, suffix = judge_path(datamodule), FEATURE_EXTRACTOR, "_judge"

        def run_aegen() -> dict[str, float]:
            return fidelity.fidelity(fidelity.model_samples(model, args.num_samples, seed=0, rgb=rgb),
                                     fidelity.SplitImages(datamodule, "train", args.num_reference, rgb=rgb), ("fid", "is"),
                                     extractor, weights, args.device, suffix=suffix)

        start = time.perf_counter()
        samples = fidelity.model_samples(model, args.num_samples, seed=0, rgb=rgb)
        fake = torch.cat([samples.chunk(i) for i in range(-(-args.num_samples // samples.chunk_size))])
        generation = time.perf_counter() - start
        real = datamodule.split("train")[0][: args.num_reference]
        real = real.expand(-1, 3, -1, -1).contiguous() if rgb else real

        def run_direct() -> dict[str, float]:
            return torch_fidelity.calculate_metrics(
                input1=Tensors(fake), input2=Tensors(real), fid=True, isc=True, feature_extractor=extractor,
                feature_extractor_weights_path=str(weights), cuda=args.device == "cuda", batch_size=64,
                save_cpu_ram=True, cache=False, verbose=False, rng_seed=0)

        times: dict[str, list[float]] = {"aegen": [], "direct": []}
        results = {}
        for _ in range(args.repeats):
            for name, run in (("direct", run_direct), ("aegen", run_aegen)):
                start = time.perf_counter()
                results[name] = run()
                times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    same = (abs(results["aegen"][f"fid{suffix}"] - results["direct"]["frechet_inception_distance"]) < 1e-6
            and abs(results["aegen"][f"is{suffix}_mean"] - results["direct"]["inception_score_mean"]) < 1e-6)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"FID + IS, {args.features} features, {args.num_samples} samples vs {len(real)} training images, "
          f"best of {args.repeats}")
    print(f"direct torch-fidelity: {best['direct']:.2f} s   aegen: {best['aegen']:.2f} s   "
          f"ratio aegen/direct: {best['aegen'] / best['direct']:.3f}")
    print(f"generating the samples up front (not in 'direct'): {generation:.2f} s; "
          f"ratio aegen/(direct + generation): {best['aegen'] / (best['direct'] + generation):.3f}")
    print(f"all times: {times}")
    print(f"same numbers: {same} (aegen fid {results['aegen'][f'fid{suffix}']:.6f}, is {results['aegen'][f'is{suffix}_mean']:.6f}; "
          f"direct fid {results['direct']['frechet_inception_distance']:.6f}, is {results['direct']['inception_score_mean']:.6f})")


if __name__ == "__main__":
    main()
