#!/usr/bin/env python3
"""PyTorch reference trainer for ballast's benchmarks: the same network, data, normalisation,
optimiser, schedule and batching as `trainer`, in plain PyTorch.

    train_torch.py --cache DIR [--epochs 3] [--batch 64] [--lr 0.01] [--momentum 0.9]
                   [--optimizer sgd|adamw] [--weight-decay W] [--schedule cosine|constant]
                   [--conv 6,16,32] [--fc 128,64,32] [--kernel 5] [--padding same|valid]
                   [--dropout 0] [--threads T] [--device cpu|cuda] [--seed 0] [--size S]
                   [--save-state OUT.safetensors]
    train_torch.py --check-logits RUN_DIR INPUTS.safetensors OUT.json

Prints one JSON line for the cache load ({"event": "load", ...}), then one per epoch:
epoch, seconds (training), eval_seconds, samples_per_s, train_loss, train_acc, val_loss, val_acc,
lr. Like ballast, the whole cache is loaded once onto the device as u8 and each batch is a
gather + cast + normalise there.

The module `Net` has attributes conv1..convN (nn.Conv2d) and fc1..fcM (nn.Linear), so a ballast
model.safetensors loads with `net.load_state_dict(safetensors.torch.load_file(path))`.
--check-logits does exactly that for a run folder and writes the logits of INPUTS' `images`.
"""
import argparse
import json
import math
import os
import sys
import time

# Must be set before torch is imported: with the default (active) policy, OpenMP threads spin
# and 2 threads ran up to 44x slower than 1 on the 2-core machines (MEASUREMENTS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        f"train_torch.py: missing Python module ({e}); get an interpreter with "
        "scripts/pyenv.sh scripts/requirements-bench.txt (or set PYTHON)\n"
    )
    sys.exit(3)


class Net(nn.Module):
    """conv k×k → ReLU → 2×2 max-pool per conv layer; flatten (NCHW); Linear+ReLU(+dropout)
    per hidden width; Linear to the logits. Returns logits: the loss is cross_entropy on them."""

    def __init__(self, conv, fc, classes, size, kernel=5, padding="same", dropout=0.0, in_ch=1):
        super().__init__()
        pad = (kernel - 1) // 2 if padding == "same" else 0
        self.n_conv, self.n_fc = len(conv), len(fc) + 1
        self.dropout = dropout
        c, s = in_ch, size
        for i, out in enumerate(conv, 1):
            self.add_module(f"conv{i}", nn.Conv2d(c, out, kernel, padding=pad))
            s = (s + 2 * pad - kernel + 1) // 2
            if s < 1:
                raise SystemExit(f"conv{i}: map shrinks below 1x1 at input {size}")
            c = out
        fin = c * s * s
        for j, out in enumerate(list(fc) + [classes], 1):
            self.add_module(f"fc{j}", nn.Linear(fin, out))
            fin = out

    def forward(self, x):
        for i in range(1, self.n_conv + 1):
            x = F.max_pool2d(F.relu(getattr(self, f"conv{i}")(x)), 2)
        x = torch.flatten(x, 1)
        for j in range(1, self.n_fc + 1):
            x = getattr(self, f"fc{j}")(x)
            if j < self.n_fc:
                x = F.relu(x)
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
        return x


def widths(s):
    s = s.strip()
    return [] if s in ("", "none") else [int(v) for v in s.split(",")]


def load_cache(cache, device):
    """Every shard listed in index.json, concatenated per split, on `device` as u8 / int64."""
    with open(os.path.join(cache, "index.json")) as f:
        index = json.load(f)
    out = {}
    for split in ("train", "val"):
        imgs, labels = [], []
        for e in index["shards"]:
            if e["split"] != split:
                continue
            t = load_file(os.path.join(cache, e["file"]))
            imgs.append(t["images"])
            labels.append(t["labels"])
        if not imgs:
            raise SystemExit(f"{cache}: no {split} shards")
        out[split] = (torch.cat(imgs).to(device), torch.cat(labels).to(device))
    return index, out


def normalise(x_u8, mean, std):
    return (x_u8.float() / 255.0 - mean) / std


def lr_at(args, epoch):
    if args.schedule == "cosine":
        return 0.5 * args.lr * (1 + math.cos(math.pi * epoch / max(args.epochs, 1)))
    return args.lr


def evaluate(net, images, labels, mean, std, batch):
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            x = normalise(images[i : i + batch], mean, std)
            y = labels[i : i + batch]
            z = net(x)
            loss += F.cross_entropy(z, y, reduction="sum").item()
            correct += (z.argmax(1) == y).sum().item()
    return loss / len(labels), correct / len(labels)


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    index, data = load_cache(args.cache, device)
    sync()
    (tx, ty), (vx, vy) = data["train"], data["val"]
    size = index["size"]
    if args.size and args.size != size:
        raise SystemExit(f"--size {args.size} but the cache holds {size}x{size} samples")
    mean, std = index["mean"], index["std"]
    print(json.dumps({"event": "load", "seconds": time.perf_counter() - t0,
                      "train": len(ty), "val": len(vy), "size": size,
                      "threads": torch.get_num_threads(), "device": str(device),
                      "torch": torch.__version__}), flush=True)
    net = Net(widths(args.conv), widths(args.fc), len(index["classes"]), size,
              args.kernel, args.padding, args.dropout).to(device)
    wd = args.weight_decay if args.weight_decay is not None else (0.01 if args.optimizer == "adamw" else 0.0)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=wd)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    n = len(ty)
    for epoch in range(args.epochs):
        lr = lr_at(args, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        net.train()
        sync()
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, n, args.batch):
            idx = order[i : i + args.batch]
            x = normalise(tx.index_select(0, idx), mean, std)
            y = ty.index_select(0, idx)
            z = net(x)
            loss = F.cross_entropy(z, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (z.detach().argmax(1) == y).sum()
        sync()
        seconds = time.perf_counter() - start
        e0 = time.perf_counter()
        val_loss, val_acc = evaluate(net, vx, vy, mean, std, args.eval_batch)
        sync()
        print(json.dumps({
            "epoch": epoch + 1, "seconds": seconds, "eval_seconds": time.perf_counter() - e0,
            "samples_per_s": n / seconds, "train_loss": loss_sum.item() / n,
            "train_acc": correct.item() / n, "val_loss": val_loss, "val_acc": val_acc, "lr": lr,
        }), flush=True)
    if args.save_state:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, args.save_state)


def check_logits(run_dir, inputs, out):
    """Loads a ballast run's model.safetensors into Net (strict) and writes its logits."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    m = config["spec"]["model"]
    net = Net(m["conv"], m["fc"], m["classes"], m["size"], m["kernel"], m["padding"], 0.0, m["in_channels"])
    net.load_state_dict(load_file(os.path.join(run_dir, "model.safetensors")))
    net.eval()
    images = load_file(inputs)["images"]
    with torch.no_grad():
        z = net(normalise(images, config["data"]["mean"], config["data"]["std"]))
    with open(out, "w") as f:
        json.dump({"logits": z.tolist()}, f)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check-logits":
        if len(sys.argv) != 5:
            raise SystemExit("usage: train_torch.py --check-logits RUN_DIR INPUTS.safetensors OUT.json")
        check_logits(*sys.argv[2:5])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--conv", default="6,16,32")
    p.add_argument("--fc", default="128,64,32")
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--padding", choices=["same", "valid"], default="same")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=0, help="expected sample size (checked)")
    p.add_argument("--save-state", help="write the trained state dict (ballast names) here")
    args = p.parse_args()
    if args.batch < 1:
        raise SystemExit("--batch must be at least 1")
    train(args)


if __name__ == "__main__":
    main()
