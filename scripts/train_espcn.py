#!/usr/bin/env python
"""Train an ESPCN upscaler: ``python scripts/train_espcn.py --help`` (see srpipe/default_plugins/espcn/training.py).

The shipped weights: scripts/train_shipped.sh. Use one thread and a low priority on shared
machines: OMP_NUM_THREADS=1 nice -n 10 python scripts/train_espcn.py --scale 3 --out RUN ...
"""

import os
from pathlib import Path

from srpipe.default_plugins.espcn.training import main
from srpipe.errors import SrpipeError

if __name__ == "__main__":
    # the development tree's data (../shared/data beside the checkout) unless $SRPIPE_DATA says
    os.environ.setdefault("SRPIPE_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    try:
        main()
    except SrpipeError as exc:  # what to do, in a line, not a traceback
        raise SystemExit(f"error: {exc}") from None
