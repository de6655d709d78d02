import re
import subprocess
import sys

from tests.conftest import REPO, subprocess_env


def test_gpu_check_dry_run_prints_every_table():
    """benchmarks/gpu_check.py --dry-run (CPU, tiny): a row per model with numbers in every column, the
    1- and 2-process gaia DDP rows with a scaling, and a timed FID+IS line, with no failed cell."""
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run"], cwd=REPO,
                            env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "error" not in out, out
    number = r"\s+\d+(\.\d+)?"
    for model in ("ae", "gaia"):
        assert re.search(rf"^{model}(?:{number}\s+-){{2}}$", out, re.M), out  # fp32 and bf16: steps/s, no CPU peak
    assert re.search(rf"^1{number}{number}\s+1\.000$", out, re.M), out
    assert re.search(rf"^2{number}{number}{number}$", out, re.M), out
    assert re.search(r"^FID\+IS 16 samples vs 16 training images on cpu: \d+\.\d s$", out, re.M), out
    assert "note: compiled: skipped in --dry-run" in out
