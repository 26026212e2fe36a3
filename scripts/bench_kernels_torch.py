#!/usr/bin/env python3
"""PyTorch side of scripts/bench-kernels.sh: one training step of the report CNN.

Times forward + backward + SGD(momentum 0.9) step of the default network (three 5x5 'same'
convs 6/16/32, each + bias + ReLU + 2x2 max-pool; FC 128/64/32 + ReLU; N logits; cross-entropy)
on random data, with PyTorch's default init, exactly what a user would write. Prints one JSON
line per configuration: {"impl":"pytorch","batch":..,"size":..,"threads":..,"ms_median":..,
"ms_min":..,"steps":..,"peak_rss_mib":..}.

OMP_WAIT_POLICY=PASSIVE must be set before torch is imported (see MEASUREMENTS.md): the caller
sets it; we set it here too when it is missing.
"""

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Net(nn.Module):
    def __init__(self, size, conv=(6, 16, 32), fc=(128, 64, 32), classes=5, kernel=5):
        super().__init__()
        pad = (kernel - 1) // 2
        chans = [1, *conv]
        self.convs = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernel, padding=pad) for i in range(len(conv))
        )
        s = size
        for _ in conv:
            s //= 2
        widths = [conv[-1] * s * s, *fc]
        self.fcs = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(len(fc)))
        self.out = nn.Linear(widths[-1], classes)

    def forward(self, x):
        for c in self.convs:
            x = F.max_pool2d(F.relu(c(x)), 2)
        x = torch.flatten(x, 1)
        for f in self.fcs:
            x = F.relu(f(x))
        return self.out(x)


def rss_peak_mib():
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(batch, size, threads, steps, warmup, classes):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net(size, classes=classes)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 1, size, size, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    times = []
    cpu0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            cpu0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt * 1e3)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / steps
    times.sort()
    return {
        "impl": "pytorch",
        "batch": batch,
        "size": size,
        "threads": threads,
        "ms_median": times[len(times) // 2],
        "ms_min": times[0],
        "steps": steps,
        "cpu_ms": cpu_ms,
        "peak_rss_mib": rss_peak_mib(),
        "torch": torch.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--classes", type=int, default=5)
    a = ap.parse_args()
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        print("warning: OMP_WAIT_POLICY is not PASSIVE; torch timings at 2 threads suffer", file=sys.stderr)
    r = bench(a.batch, a.size, a.threads, a.steps, a.warmup, a.classes)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
