#!/usr/bin/env python3
"""xz compression with only Python's standard library (lzma): the GPU machine has no zstd and no
xz binary, but every Python has lzma. Used by scripts/build-cuda.sh and scripts/gpu-check.sh.

    xz.py compress SRC DEST.xz      # preset 9 | extreme
    xz.py decompress SRC.xz DEST    # DEST written to a temporary name, then renamed
"""
import lzma
import os
import shutil
import sys


def main(argv):
    if len(argv) != 4 or argv[1] not in ("compress", "decompress"):
        sys.exit(__doc__)
    mode, src, dest = argv[1:]
    tmp = f"{dest}.tmp-{os.getpid()}"
    try:
        if mode == "compress":
            with open(src, "rb") as f, lzma.open(tmp, "wb", preset=9 | lzma.PRESET_EXTREME) as g:
                shutil.copyfileobj(f, g, 1 << 20)
        else:
            with lzma.open(src, "rb") as f, open(tmp, "wb") as g:
                shutil.copyfileobj(f, g, 1 << 20)
        os.replace(tmp, dest)
    except (OSError, lzma.LZMAError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        sys.exit(f"xz.py: {src}: {e}")


if __name__ == "__main__":
    main(sys.argv)
