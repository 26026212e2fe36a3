#!/usr/bin/env python3
"""The pipeline a PyTorch user would write instead of `packer`: the same tiles through
torchvision transforms into safetensors shards.

    OMP_WAIT_POLICY=PASSIVE PYTHON scripts/bench_packer_torch.py --tiles DIR --out DIR \
        [--size 64] [--jitter 0.25] [--workers 2] [--shard-samples 50000]

Per tile: PIL open -> Grayscale() -> Resize(size, antialias=True) -> ColorJitter(j, j) for train
tiles -> uint8 numpy array, in `--workers` processes (multiprocessing, imap in manifest order);
the parent accumulates samples and writes `{split}-NNNNN.safetensors` with
safetensors.numpy.save_file every --shard-samples samples. Falls back to PIL + numpy (same
operations) if torchvision cannot be imported. Prints one JSON line with tiles, seconds,
tiles_per_s.
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

try:
    import torch  # noqa: E402
    from torchvision import transforms as T  # noqa: E402

    HAVE_TV = True
except ImportError:  # pragma: no cover
    HAVE_TV = False

_TRAIN = None
_VAL = None
_SIZE = 64
_JITTER = 0.25


def _init(size, jitter):
    global _TRAIN, _VAL, _SIZE, _JITTER
    _SIZE, _JITTER = size, jitter
    if HAVE_TV:
        torch.set_num_threads(1)
        base = [T.Grayscale(), T.Resize(size, antialias=True)]
        _VAL = T.Compose(base)
        _TRAIN = T.Compose(base + [T.ColorJitter(brightness=jitter, contrast=jitter)])


def _fallback(img, train, rng):
    img = img.convert("L").resize((_SIZE, _SIZE), Image.BILINEAR)
    if train and _JITTER > 0:
        b, c = rng.uniform(1 - _JITTER, 1 + _JITTER, 2)
        steps = [lambda i: ImageEnhance.Brightness(i).enhance(b),
                 lambda i: ImageEnhance.Contrast(i).enhance(c)]
        for k in rng.permutation(2):
            img = steps[k](img)
    return img


def _one(job):
    path, train = job
    with Image.open(path) as img:
        img.load()
        if HAVE_TV:
            out = (_TRAIN if train else _VAL)(img)
        else:
            out = _fallback(img, train, np.random.default_rng())
    return np.asarray(out, dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tiles", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--jitter", type=float, default=0.25)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-samples", type=int, default=50000)
    args = ap.parse_args()

    tiles = pathlib.Path(args.tiles)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (tiles / "manifest.jsonl").read_text().splitlines() if line.strip()]
    classes = sorted({r["class"] for r in rows})
    label = {c: i for i, c in enumerate(classes)}

    import multiprocessing as mp

    t0 = time.perf_counter()
    n_done = 0
    with mp.get_context("fork").Pool(args.workers, initializer=_init, initargs=(args.size, args.jitter)) as pool:
        for split in ("train", "val"):
            todo = [r for r in rows if r["split"] == split]
            jobs = [(str(tiles / r["tile"]), split == "train") for r in todo]
            images, labels, shard = [], [], 0
            for i, arr in enumerate(pool.imap(_one, jobs, chunksize=16)):
                images.append(arr)
                labels.append(label[todo[i]["class"]])
                if len(images) == args.shard_samples:
                    _write(out, split, shard, images, labels, args.size)
                    images, labels, shard = [], [], shard + 1
            if images:
                _write(out, split, shard, images, labels, args.size)
            n_done += len(todo)
    secs = time.perf_counter() - t0
    print(json.dumps({"tiles": n_done, "seconds": secs, "tiles_per_s": n_done / secs,
                      "torchvision": HAVE_TV, "workers": args.workers}))


def _write(out, split, shard, images, labels, size):
    imgs = np.stack(images).reshape(len(images), 1, size, size)
    save_file({"images": imgs, "labels": np.asarray(labels, dtype=np.int64)},
              str(out / f"{split}-{shard:05d}.safetensors"))


if __name__ == "__main__":
    main()
