#!/usr/bin/env python3
"""Photos straight into a tensor cache, the way a PyTorch user would write it: the Python
reference scripts/bench-direct.sh compares ballast's direct path (`tiler --tile-files none` +
`packer`) with. Everything happens in memory; no tile files.

    OMP_WAIT_POLICY=PASSIVE PYTHON scripts/bench_direct_torch.py --manifest TILES/manifest.jsonl \
        --input PHOTOS --out OUT [--size 64] [--jitter 0.25] [--processes 2]

The windows are read from a ballast manifest.jsonl (columns photo, x, y, size, split, class;
photo is relative to --input), so both pipelines cut exactly the same windows. A
multiprocessing pool (fork, --processes workers, torch.set_num_threads(1) in each) works on
whole photos: PIL open -> ImageOps.exif_transpose -> for each window crop -> torchvision
transforms (v2 if present, else v1) Grayscale() -> Resize((size, size), antialias=True) ->
ColorJitter(brightness=j, contrast=j) on train windows only -> uint8 numpy array. The parent
collects the windows in manifest order and writes OUT/{split}.safetensors per split with
tensors `images` U8 [n,1,size,size] and `labels` I64 [n] (label = index of the class in sorted
order, as ImageFolder and the packer's index.json).

Prints one JSON line: photos, windows, per-split counts, seconds (pool + writing, without the
interpreter and torch start-up), windows_per_s, torchvision version and API, and the sum of the
processes' peak RSS (an upper bound: forked pages are shared).
"""

import argparse
import json
import os
import resource
import sys
import time
from collections import OrderedDict

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import multiprocessing as mp  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

try:
    from torchvision.transforms import v2 as T  # noqa: E402

    TV_API = "v2"
except ImportError:  # pragma: no cover - torchvision < 0.15
    from torchvision import transforms as T  # noqa: E402

    TV_API = "v1"

# 16-megapixel photos are far below this; PIL's default bomb check stays in force.
Image.MAX_IMAGE_PIXELS = 250_000_000

_TRAIN = None
_VAL = None


def _init(size, jitter):
    global _TRAIN, _VAL
    torch.set_num_threads(1)
    base = [T.Grayscale(), T.Resize((size, size), antialias=True)]
    _VAL = T.Compose(base)
    _TRAIN = T.Compose(base + [T.ColorJitter(brightness=jitter, contrast=jitter)])


def _photo(job):
    """One photo: decode once, then every window. Returns [(row index, u8 array)], pid, RSS."""
    path, windows = job
    out = []
    with Image.open(path) as im:
        ImageOps.exif_transpose(im, in_place=True)
        im.load()
        for i, x, y, s, train in windows:
            tile = im.crop((x, y, x + s, y + s))
            arr = np.asarray((_TRAIN if train else _VAL)(tile), dtype=np.uint8)
            out.append((i, arr))
    return out, os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True, help="a ballast manifest.jsonl (the windows)")
    ap.add_argument("--input", required=True, help="the photo folder the manifest was made from")
    ap.add_argument("--out", required=True, help="where to write {split}.safetensors")
    ap.add_argument("--size", type=int, default=64, help="output side in pixels")
    ap.add_argument("--jitter", type=float, default=0.25, help="brightness/contrast jitter")
    ap.add_argument("--processes", type=int, default=2, help="worker processes")
    args = ap.parse_args()

    rows = []
    with open(args.manifest) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    if not rows:
        sys.exit(f"{args.manifest}: no windows listed")
    classes = sorted({r["class"] for r in rows})
    label = {c: i for i, c in enumerate(classes)}
    photos = OrderedDict()
    for i, r in enumerate(rows):
        photos.setdefault(r["photo"], []).append(
            (i, r["x"], r["y"], r["size"], r["split"] == "train")
        )
    jobs = [(os.path.join(args.input, p), ws) for p, ws in photos.items()]
    os.makedirs(args.out, exist_ok=True)

    start = time.perf_counter()
    images = [None] * len(rows)
    peak = {}
    pool = mp.get_context("fork").Pool(
        args.processes, initializer=_init, initargs=(args.size, args.jitter)
    )
    try:
        for done, pid, rss in pool.imap_unordered(_photo, jobs, chunksize=1):
            peak[pid] = max(peak.get(pid, 0), rss)
            for i, arr in done:
                images[i] = arr
    finally:
        pool.close()
        pool.join()

    counts = {}
    for split in sorted({r["split"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["split"] == split]
        imgs = np.stack([images[i] for i in idx]).reshape(len(idx), 1, args.size, args.size)
        labels = np.asarray([label[rows[i]["class"]] for i in idx], dtype=np.int64)
        save_file({"images": imgs, "labels": labels}, os.path.join(args.out, f"{split}.safetensors"))
        counts[split] = len(idx)
    seconds = time.perf_counter() - start

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + sum(peak.values())
    print(
        json.dumps(
            {
                "photos": len(jobs),
                "windows": len(rows),
                "splits": counts,
                "classes": classes,
                "seconds": round(seconds, 4),
                "windows_per_s": round(len(rows) / seconds, 2),
                "torchvision": torchvision.__version__,
                "api": TV_API,
                "processes": args.processes,
                "rss_sum_mib": round(rss_kib / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
