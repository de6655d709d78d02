"""Several `aegen fit` runs in one process: ``python -m tests.ddp_fit '[[ARGS...], [ARGS...]]'``.

For the 2-process DDP test of every model: Lightning starts the second rank once, by rerunning
this command, and both ranks then run the same fits in order, so the processes start (and import
torch) once for all models. Exits at the first fit that fails, naming it.
"""

import json
import sys

import tests.test_user_model  # noqa: F401  (the user's model, registered like aegen's own)
from aegen.cli import main


def run(runs: list[list[str]]) -> int:
    for args in runs:
        code = main(["fit", *args])
        if code:
            print(f"ddp_fit: `aegen fit {' '.join(args)}` exited with {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run(json.loads(sys.argv[1])))
