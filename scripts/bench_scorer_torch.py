#!/usr/bin/env python3
"""The scorer a PyTorch user would write, for scripts/bench-scorer.sh: PIL decodes the photo and
applies its EXIF orientation, converts it to gray once (convert("L")), cuts a grid of TILE px
windows, resizes each to the run's sample size (Image.BILINEAR, antialiased, as the packer), and
the run's model.safetensors in a plain torch module (scripts/train_torch.py's Net) gives the
softmax probabilities, averaged per photo.

    bench_scorer_torch.py --run RUN --tile 500 [--threads 2] [--runs 5]
                          [--compare TILES.jsonl] PHOTO...

Prints one JSON object: one_photo_s (median over --runs of loading the model and scoring the
first photo, in-process: interpreter start and `import torch` are not counted), batch_s (load
once, then every photo in turn), and, with --compare (the scorer's --per-tile output for the
first photo), the largest |p_torch - p_ballast| over its windows.
"""
import argparse
import json
import os
import statistics
import sys
import time

# Before torch is imported (MEASUREMENTS.md: the active policy makes 2 threads crawl here).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import numpy as np
    import torch
    from PIL import Image, ImageDraw, ImageOps
    from safetensors.torch import load_file

    from train_torch import Net
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        f"bench_scorer_torch.py: missing Python module ({e}); get an interpreter with "
        "scripts/pyenv.sh scripts/requirements-bench.txt (or set PYTHON)\n"
    )
    sys.exit(3)

Image.MAX_IMAGE_PIXELS = 250_000_000


def load_run(run):
    with open(os.path.join(run, "config.json")) as f:
        cfg = json.load(f)
    m, d = cfg["spec"]["model"], cfg["data"]
    net = Net(m["conv"], m["fc"], m["classes"], m["size"], m["kernel"], m["padding"])
    net.load_state_dict(load_file(os.path.join(run, "model.safetensors")))
    net.eval()
    # `scorer eval`'s temperature, which `scorer photos` applies: the same probabilities.
    temperature = 1.0
    cal = os.path.join(run, "calibration.json")
    if os.path.exists(cal):
        with open(cal) as f:
            temperature = json.load(f)["calibration"]["temperature"]
    net.temperature = temperature
    return net, d["classes"], d["mean"], d["std"], m["size"]


def score(path, net, mean, std, size, tile, keep=None):
    """Per-window probabilities [n, classes], windows in row-major order, and their corners.
    With keep=[], the decoded RGB photo is appended to it (for a map)."""
    with Image.open(path) as im:
        upright = ImageOps.exif_transpose(im)
        gray = upright.convert("L")
        if keep is not None:
            keep.append(upright.convert("RGB"))
    w, h = gray.size
    corners = [(x, y) for y in range(0, h - tile + 1, tile) for x in range(0, w - tile + 1, tile)]
    samples = np.stack(
        [
            np.asarray(gray.crop((x, y, x + tile, y + tile)).resize((size, size), Image.BILINEAR))
            for x, y in corners
        ]
    )
    x = torch.from_numpy(samples).unsqueeze(1).float()
    x = (x / 255.0 - mean) / std
    with torch.no_grad():
        return torch.softmax(net(x) / net.temperature, dim=1), corners


PALETTE = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
           (213, 94, 0), (240, 228, 66), (0, 0, 0)]


def draw_map(rgb, probs, corners, tile, classes, out, side=1024):
    """The PIL way to the scorer's --maps PNG: downscale, tint each window by its class with
    alpha from its confidence, a legend strip with PIL's default font, PNG at a fast level."""
    s = min(1.0, side / max(rgb.size))
    thumb = rgb.resize((max(1, round(rgb.width * s)), max(1, round(rgb.height * s))),
                       Image.BILINEAR).convert("RGBA")
    overlay = Image.new("RGBA", thumb.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    for (x, y), p in zip(corners, probs.tolist()):
        c = max(range(len(p)), key=p.__getitem__)
        box = [x * s, y * s, (x + tile) * s - 1, (y + tile) * s - 1]
        d.rectangle(box, fill=PALETTE[c % len(PALETTE)] + (int(40 + 160 * p[c]),),
                    outline=(255, 255, 255, 160))
    img = Image.alpha_composite(thumb, overlay).convert("RGB")
    legend = Image.new("RGB", (img.width, 16 * (len(classes) + 1)), (255, 255, 255))
    d = ImageDraw.Draw(legend)
    for i, name in enumerate(classes):
        d.rectangle([4, 16 * i + 4, 14, 16 * i + 14], fill=PALETTE[i % len(PALETTE)])
        d.text((20, 16 * i + 3), name, fill=(0, 0, 0))
    page = Image.new("RGB", (img.width, img.height + legend.height))
    page.paste(img, (0, 0))
    page.paste(legend, (0, img.height))
    page.save(out, compress_level=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--tile", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compare")
    ap.add_argument("--map-out", help="also time one photo with a PIL map written here")
    ap.add_argument("photos", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    one = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        net, classes, mean, std, size = load_run(a.run)
        probs, corners = score(a.photos[0], net, mean, std, size, a.tile)
        probs.mean(0)
        one.append(time.perf_counter() - t0)

    maps = []
    if a.map_out:
        for _ in range(a.runs):
            t0 = time.perf_counter()
            net, classes, mean, std, size = load_run(a.run)
            keep = []
            probs, corners = score(a.photos[0], net, mean, std, size, a.tile, keep)
            probs.mean(0)
            draw_map(keep[0], probs, corners, a.tile, classes, a.map_out)
            maps.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    net, classes, mean, std, size = load_run(a.run)
    for p in a.photos:
        score(p, net, mean, std, size, a.tile)[0].mean(0)
    batch = time.perf_counter() - t0

    result = {"one_photo_s": statistics.median(one), "batch_s": batch, "photos": len(a.photos)}
    if maps:
        result["one_photo_map_s"] = statistics.median(maps)
    if a.compare:
        with open(a.compare) as f:
            ours = {(r["x"], r["y"]): r["probabilities"] for r in map(json.loads, f)}
        diff = 0.0
        for (x, y), row in zip(corners, probs.tolist()):
            theirs = ours[(x, y)]
            diff = max(diff, max(abs(p - theirs[c]) for p, c in zip(row, classes)))
        result["max_abs_diff_first_photo"] = diff
    print(json.dumps(result))


if __name__ == "__main__":
    main()
