#!/usr/bin/env python3
"""Loads every shard of a ballast cache with safetensors.numpy and checks it against index.json.

    PYTHON scripts/check_shards.py CACHE_DIR

Checks per shard: `images` is uint8 [n,1,S,S] and `labels` int64 [n] with n = the index's
sample count, labels within the class list, and the `ballast` metadata's provenance lists have
n entries. Prints one JSON object: {"shards": {file: {"n", "images_sha256", "labels_sha256",
"label_counts"}}, "classes": [...], "size": S}, which the Rust tests compare with what Rust
reads. Exits 1 with a message on any mismatch; 2 if numpy/safetensors are missing.
"""

import hashlib
import json
import pathlib
import sys

try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file
except ImportError as e:  # pragma: no cover - environment problem, reported clearly
    print(
        f"check_shards.py needs numpy and safetensors ({e}); "
        "run scripts/test.sh, which installs numpy and safetensors",
        file=sys.stderr,
    )
    sys.exit(2)


def fail(msg):
    print(f"check_shards.py: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: check_shards.py CACHE_DIR")
    cache = pathlib.Path(sys.argv[1])
    index = json.loads((cache / "index.json").read_text())
    size, classes = index["size"], index["classes"]
    out = {"classes": classes, "size": size, "shards": {}}
    for entry in index["shards"]:
        path = cache / entry["file"]
        arrays = load_file(str(path))
        images, labels = arrays["images"], arrays["labels"]
        n = entry["samples"]
        if images.dtype != np.uint8 or images.shape != (n, 1, size, size):
            fail(f"{entry['file']}: images {images.dtype} {images.shape}, expected uint8 {(n, 1, size, size)}")
        if labels.dtype != np.int64 or labels.shape != (n,):
            fail(f"{entry['file']}: labels {labels.dtype} {labels.shape}, expected int64 ({n},)")
        if n and (labels.min() < 0 or labels.max() >= len(classes)):
            fail(f"{entry['file']}: labels outside 0..{len(classes)}")
        with safe_open(str(path), framework="np") as f:
            meta = json.loads(f.metadata()["ballast"])
        for key in ("tiles", "photos", "copies"):
            if len(meta[key]) != n:
                fail(f"{entry['file']}: metadata {key} has {len(meta[key])} entries, expected {n}")
        if meta["classes"] != classes:
            fail(f"{entry['file']}: metadata classes differ from index.json")
        out["shards"][entry["file"]] = {
            "n": n,
            "images_sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(),
            "labels_sha256": hashlib.sha256(labels.astype("<i8").tobytes()).hexdigest(),
            "label_counts": np.bincount(labels, minlength=len(classes)).tolist(),
        }
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
