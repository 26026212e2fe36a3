#!/usr/bin/env python3
"""Independent forward pass of a ballast trainer run, in plain numpy (float64).

    numpy_forward.py RUN_DIR INPUTS.safetensors OUT.json

Reads RUN_DIR/config.json (architecture, padding, normalisation) and RUN_DIR/model.safetensors
(PyTorch state-dict names: conv1.weight [O,I,K,K], ..., fc1.weight [out,in], ...), and the u8
tensor `images` [B,1,S,S] from INPUTS.safetensors. Writes {"logits": [[...], ...]} to OUT.json.

Nothing here comes from candle or torch: convolution by sliding windows and einsum, ReLU,
2x2 max-pool (floor), NCHW flatten, linear layers. A Rust test compares the result with the
trainer's own logits (max abs difference <= 1e-4).
"""
import json
import sys

try:
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    from safetensors.numpy import load_file
except ImportError as e:  # pragma: no cover - environment problem, reported clearly
    sys.stderr.write(
        f"numpy_forward.py: missing Python module ({e}); run scripts/test.sh, which installs "
        "numpy and safetensors (or set BALLAST_PYTHON to an interpreter that has them)\n"
    )
    sys.exit(3)


def conv2d(x, w, b, pad):
    """x [B,C,H,W], w [O,C,K,K], b [O]; stride 1, zero padding `pad`."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))  # [B,C,Ho,Wo,K,K]
    return np.einsum("bchwij,ocij->bohw", win, w, optimize=True) + b[None, :, None, None]


def max_pool2(x):
    """2x2 max-pool, stride 2, dropping an odd last row/column (PyTorch floor mode)."""
    b, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    x = x[:, :, : 2 * h2, : 2 * w2]
    return x.reshape(b, c, h2, 2, w2, 2).max(axis=(3, 5))


def forward(params, model, mean, std, images):
    x = images.astype(np.float64)
    x = (x / 255.0 - mean) / std
    k = model["kernel"]
    pad = (k - 1) // 2 if model["padding"] == "same" else 0
    for i in range(1, len(model["conv"]) + 1):
        w = params[f"conv{i}.weight"].astype(np.float64)
        bias = params[f"conv{i}.bias"].astype(np.float64)
        x = max_pool2(np.maximum(conv2d(x, w, bias, pad), 0.0))
    x = x.reshape(x.shape[0], -1)
    n_fc = len(model["fc"]) + 1
    for j in range(1, n_fc + 1):
        w = params[f"fc{j}.weight"].astype(np.float64)
        bias = params[f"fc{j}.bias"].astype(np.float64)
        x = x @ w.T + bias
        if j < n_fc:
            x = np.maximum(x, 0.0)
    return x


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    run_dir, inputs, out = argv[1], argv[2], argv[3]
    with open(f"{run_dir}/config.json") as f:
        config = json.load(f)
    model = config["spec"]["model"]
    mean, std = config["data"]["mean"], config["data"]["std"]
    params = load_file(f"{run_dir}/model.safetensors")
    images = load_file(inputs)["images"]
    if images.dtype != np.uint8 or images.ndim != 4:
        sys.stderr.write(f"{inputs}: `images` must be u8 [B,1,S,S], got {images.dtype} {images.shape}\n")
        return 1
    logits = forward(params, model, mean, std, images)
    with open(out, "w") as f:
        json.dump({"logits": logits.tolist()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
