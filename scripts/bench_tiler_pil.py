#!/usr/bin/env python3
"""A plain Python/PIL tiler: the baseline scripts/bench-tiler.sh compares ballast's tiler with.

It does the job the way a user would write it: a multiprocessing pool over photos; each worker
opens a photo, applies its EXIF orientation, crops every window and saves it as PNG. The
windows are read from a ballast manifest.jsonl (so both tilers cut exactly the same tiles) and
the tiles are written under OUT with the same relative paths.

    python scripts/bench_tiler_pil.py --manifest TILES/manifest.jsonl --input PHOTOS \
        --out OUT --workers 2 --compress-level 1

Prints one JSON line: photos, tiles, megapixels (of the photos), seconds, bytes written.
"""

import argparse
import json
import os
import sys
import time
from collections import OrderedDict
from multiprocessing import Pool

from PIL import Image, ImageOps

# 16-megapixel photos are far below this; PIL's default bomb check stays in force.
Image.MAX_IMAGE_PIXELS = 250_000_000


def tile_photo(job):
    photo_path, windows, out_dir, level = job
    with Image.open(photo_path) as im:
        ImageOps.exif_transpose(im, in_place=True)
        im.load()
        megapixels = im.width * im.height / 1e6
        written = 0
        for x, y, size, rel in windows:
            dest = os.path.join(out_dir, rel)
            im.crop((x, y, x + size, y + size)).save(dest, format="PNG", compress_level=level)
            written += os.path.getsize(dest)
    return megapixels, len(windows), written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True, help="a ballast manifest.jsonl (the windows)")
    ap.add_argument("--input", required=True, help="the photo folder the manifest was made from")
    ap.add_argument("--out", required=True, help="where to write the tiles")
    ap.add_argument("--workers", type=int, default=2, help="worker processes")
    ap.add_argument("--compress-level", type=int, default=1, help="zlib level (PIL default: 6)")
    args = ap.parse_args()

    photos = OrderedDict()
    with open(args.manifest) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            photos.setdefault(r["photo"], []).append((r["x"], r["y"], r["size"], r["tile"]))
    if not photos:
        sys.exit(f"{args.manifest}: no tiles listed")
    folders = {os.path.dirname(t[3]) for ws in photos.values() for t in ws}
    for d in folders:
        os.makedirs(os.path.join(args.out, d), exist_ok=True)

    jobs = [
        (os.path.join(args.input, photo), windows, args.out, args.compress_level)
        for photo, windows in photos.items()
    ]
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        results = pool.map(tile_photo, jobs, chunksize=1)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "photos": len(results),
                "tiles": sum(r[1] for r in results),
                "megapixels": round(sum(r[0] for r in results), 3),
                "seconds": round(seconds, 4),
                "bytes": sum(r[2] for r in results),
            }
        )
    )


if __name__ == "__main__":
    main()
