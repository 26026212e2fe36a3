#!/usr/bin/env python3
"""The default-recipe table of scripts/compare-accuracy.sh --defaults, from its rows file.

    defaults_table.py ROWS.tsv THREADS

Each row: cache, recipe, seed, final val accuracy, kept-model val accuracy, wall seconds,
epochs[, PyTorch's recipe]. "kept" is the epoch with the lowest val loss: the weights ballast
keeps in model.safetensors (and the scorer evaluates); "final" is the last epoch. Prints one
Markdown table per measure, one row per cache: the mean over the seeds for ballast's defaults,
the three earlier recipes and PyTorch with the best of them (per seed in brackets); the mean wall
time of a default run and of one with the old defaults, and their ratio; and whether the
defaults met the targets (mean >= the best recipe's, more than 10 points above chance, and wall
time within 1.5x of the old defaults').
"""
import json
import os
import statistics as st
import sys

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
threads = sys.argv[2]
caches = list(dict.fromkeys(r[0] for r in rows))
recipes = ["old-defaults", "sgd-b16", "adamw-b32"]
MEASURES = {"final": 3, "kept": 4}
WALL, EPOCHS, TORCH = 5, 6, 7


def cell(vals):
    if not vals:
        return "-"
    return f"{100 * st.mean(vals):.1f} % ({' / '.join(f'{100 * v:.1f}' for v in vals)})"


for measure, col in MEASURES.items():
    what = ("the last epoch's" if measure == "final"
            else "the kept model's (lowest val loss epoch, model.safetensors)")
    print(f"\nMean val accuracy of {what} over seeds (per seed in brackets), {threads} threads; "
          "every recipe at the default run's epochs.\n")
    print("| cache | train | classes | size | epochs | chance | ballast defaults | old defaults "
          "(SGD 0.01 b64) | SGD 0.01 b16 | AdamW 0.001 b32 | PyTorch, best recipe | default s | "
          "old default s | time ratio | targets |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for cache in caches:
        mine = [r for r in rows if r[0] == cache]
        acc = {n: [float(r[col]) for r in mine if r[1] == n]
               for n in ["defaults", *recipes, "pytorch"]}
        wall = {n: [float(r[WALL]) for r in mine if r[1] == n] for n in ["defaults", "old-defaults"]}
        index = json.load(open(os.path.join(cache, "index.json")))
        classes = len(index["classes"])
        chance = 1 / classes
        best_recipe = max(recipes, key=lambda n: st.mean(acc[n]) if acc[n] else -1)
        torch_recipe = next((r[TORCH] for r in mine if r[1] == "pytorch"), "-")
        epochs = sorted({r[EPOCHS] for r in mine})
        d = st.mean(acc["defaults"])
        ratio = st.mean(wall["defaults"]) / st.mean(wall["old-defaults"])
        ok = d >= st.mean(acc[best_recipe]) - 1e-12 and d > chance + 0.10 and ratio <= 1.5
        name = os.path.basename(os.path.dirname(cache))
        print(f"| {name} | {index['splits']['train']['samples']} | {classes} | {index['size']} | "
              f"{'/'.join(epochs)} | {100 * chance:.0f} % | {cell(acc['defaults'])} | "
              f"{cell(acc['old-defaults'])} | {cell(acc['sgd-b16'])} | {cell(acc['adamw-b32'])} | "
              f"{cell(acc['pytorch'])} ({torch_recipe}) | {st.mean(wall['defaults']):.1f} | "
              f"{st.mean(wall['old-defaults']):.1f} | {ratio:.2f}x | "
              f"{'met' if ok else 'MISSED (best: ' + best_recipe + ')'} |")
