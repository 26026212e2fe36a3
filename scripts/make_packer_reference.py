#!/usr/bin/env python3
"""Makes the packer's fidelity fixtures: small textured tiles and what Pillow (and, when
installed, torchvision) make of them.

    PYTHON scripts/make_packer_reference.py [--make-tiles]

--make-tiles first (re)generates the fixture tiles in fixtures/packer/tiles/ from seeded
synthetic textures. Then, for every tile, the reference is Pillow's BT.601 luma
(`convert("L")`) at full resolution and `convert("L").resize((S, S), Image.BILINEAR)` for
several S -- exactly what torchvision's Grayscale() + Resize(S, antialias=True) compute on PIL
images (checked here too when torchvision is importable). With torchvision, brightness/contrast
jitter references are added: torchvision.transforms.functional.adjust_brightness /
adjust_contrast on float tensors with fixed factors and both orders, scaled back to 0-255 and
rounded. Everything goes to fixtures/packer/reference.safetensors (tensor names
`gray/<tile>`, `s<S>/<tile>`, `jitter/<case>`; the jitter cases' factors are in the metadata).
The outputs are committed; rerun only to extend the fixtures.
"""

import argparse
import json
import pathlib

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "packer"
TILES = FIXTURES / "tiles"
SIZES = [64, 32, 17, 8]


def grains(rng, h, w, n, flat=True):
    """Overlapping shaded disks on a dark matrix: a crude ballast texture."""
    img = np.zeros((h, w, 3), np.float32)
    img[:] = rng.uniform(20, 60, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(4, max(6, min(h, w) / 6))
        base = rng.uniform(60, 230, 3)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        inside = d2 < r * r
        if flat:
            img[inside] = base
        else:
            shade = 1.15 - 0.35 * np.sqrt(d2[inside] / (r * r))
            img[inside] = base[None, :] * shade[:, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_tiles():
    TILES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)
    # A 500-px tile (the tiler's default size) with flat grains: sharp edges, compresses well.
    Image.fromarray(grains(rng, 500, 500, 180)).save(TILES / "grains_500.png")
    # Odd size, shaded grains.
    Image.fromarray(grains(rng, 257, 257, 60, flat=False)).save(TILES / "shaded_257.png")
    # Pure noise: every pixel matters.
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(
        TILES / "noise_128.png"
    )
    # High-frequency stripes and a checkerboard: aliasing stress for the downsample.
    yy, xx = np.mgrid[0:199, 0:199]
    stripes = np.stack(
        [
            ((xx // 1) % 2) * 255,
            ((yy // 2) % 2) * 200 + 20,
            (((xx // 3) + (yy // 3)) % 2) * 180 + 40,
        ],
        axis=-1,
    ).astype(np.uint8)
    Image.fromarray(stripes).save(TILES / "stripes_199.png")
    # A grayscale (L8) tile, as the tiler writes for grayscale photos.
    g = grains(rng, 150, 150, 40, flat=False)[:, :, 0]
    Image.fromarray(g).save(TILES / "gray_150.png")
    # Non-square and RGBA: not what the tiler writes, but sample_from_pixels accepts them.
    Image.fromarray(grains(rng, 77, 123, 20)).save(TILES / "wide_123x77.png")
    rgba = np.concatenate(
        [grains(rng, 96, 96, 15), rng.integers(0, 256, (96, 96, 1), dtype=np.uint8)], axis=-1
    )
    Image.fromarray(rgba).save(TILES / "rgba_96.png")


def jitter_reference(tensors, meta):
    try:
        import torch
        import torchvision.transforms.functional as TF
    except ImportError:
        print("torchvision not importable: no jitter reference")
        return
    cases = []
    for tile in ["grains_500", "shaded_257", "noise_128"]:
        base = tensors[f"s64/{tile}"]
        for b, c, order in [
            (0.75, 1.25, "bc"),
            (1.25, 0.8, "cb"),
            (1.2, 1.2, "bc"),
            (0.8, 0.75, "cb"),
            (1.0, 1.25, "bc"),
        ]:
            x = torch.from_numpy(base.astype(np.float32) / 255.0).unsqueeze(0)
            for step in order:
                x = TF.adjust_brightness(x, b) if step == "b" else TF.adjust_contrast(x, c)
            y = (x[0] * 255.0).round().clamp(0, 255).numpy().astype(np.uint8)
            name = f"jitter/{len(cases)}"
            tensors[name] = y
            cases.append({"name": name, "base": f"s64/{tile}", "brightness": b,
                          "contrast": c, "order": order})
    meta["jitter_cases"] = json.dumps(cases)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--make-tiles", action="store_true")
    args = ap.parse_args()
    if args.make_tiles:
        make_tiles()
    tensors = {}
    for path in sorted(TILES.glob("*.png")):
        img = Image.open(path)
        img.load()
        gray = img.convert("L")
        tensors[f"gray/{path.stem}"] = np.asarray(gray, dtype=np.uint8).copy()
        for s in SIZES:
            small = np.asarray(gray.resize((s, s), Image.BILINEAR), dtype=np.uint8).copy()
            tensors[f"s{s}/{path.stem}"] = small
            try:
                from torchvision import transforms as T
            except ImportError:
                continue
            tv = T.Compose([T.Grayscale(), T.Resize((s, s), antialias=True)])
            assert np.array_equal(np.asarray(tv(img)), small), (
                f"torchvision and Pillow disagree on {path.name} at {s}"
            )
    meta = {"sizes": json.dumps(SIZES), "pillow": Image.__version__}
    jitter_reference(tensors, meta)
    save_file(tensors, str(FIXTURES / "reference.safetensors"), metadata=meta)
    print(f"wrote {len(tensors)} arrays to {FIXTURES / 'reference.safetensors'}")


if __name__ == "__main__":
    main()
