#!/usr/bin/env python3
"""Per-tile stage times of the torchvision pipeline (the reference of scripts/bench-packer.sh),
one process, one thread, tile files already in memory: the counterpart of the packer's
`stage_times` example.

    OMP_WAIT_POLICY=PASSIVE PYTHON scripts/bench_packer_stages.py TILES [N] [SIZE]

Prints one JSON object of ms/tile, best of 3 rounds: `decode` (PIL open + load: inflate,
unfilter), `transforms` (Grayscale, Resize(SIZE, antialias=True), ColorJitter(0.25, 0.25),
then a uint8 array) and `total` (both, per tile, as the pipeline runs them).
"""

import io
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import transforms as T  # noqa: E402


def best_of(rounds, n, f):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(n):
            f(i)
        best = min(best, (time.perf_counter() - t0) * 1e3 / n)
    return best


def main():
    tiles = pathlib.Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    torch.set_num_threads(1)
    rows = [json.loads(x) for x in (tiles / "manifest.jsonl").read_text().splitlines() if x.strip()][:n]
    files = [(tiles / r["tile"]).read_bytes() for r in rows]
    n = len(files)
    tr = T.Compose([T.Grayscale(), T.Resize(size, antialias=True), T.ColorJitter(0.25, 0.25)])

    def decode(i):
        im = Image.open(io.BytesIO(files[i]))
        im.load()
        return im

    images = [decode(i) for i in range(n)]
    out = {
        "tiles": n,
        "decode": best_of(3, n, decode),
        "transforms": best_of(3, n, lambda i: np.asarray(tr(images[i]), dtype=np.uint8)),
        "total": best_of(3, n, lambda i: np.asarray(tr(decode(i)), dtype=np.uint8)),
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
