#!/usr/bin/env python3
"""Generate the upload benchmark's input data.

    python3 bench/gen_data.py OUTDIR

Creates:
  OUTDIR/small/dNN/fNNNNN.bin  3,000 files of random bytes, sizes uniform in
                               [20 KiB, 200 KiB], 10 sub-folders x 300 files.
                               Fully deterministic (seeded), so every machine
                               benchmarks exactly the same bytes.
  OUTDIR/big.bin               exactly 1 GiB of random bytes (os.urandom: not
                               reproducible, but fast, and for one big file
                               only the size matters).
  OUTDIR/big/big.bin           a hard link to big.bin, because directory-based
                               senders (`framewire send DIR`, rsync) need a
                               folder holding just that file; file-based peers
                               (socat, cp) use big.bin.

Random (incompressible) bytes keep any tool from winning by compression.
Existing data is reused when it already has the right file count and sizes,
so repeated benchmark runs do not pay for generation.
"""

import os
import random
import shutil
import sys

SEED = 20240607          # fixed: the small-file set must be identical everywhere
N_DIRS = 10
FILES_PER_DIR = 300
MIN_SIZE = 20 * 1024
MAX_SIZE = 200 * 1024
BIG_SIZE = 1 << 30       # exactly 1 GiB
BLOCK = 16 << 20         # write the big file in 16 MiB blocks


def small_plan():
    """Yield (relative path, size, seed) for every small file, deterministically."""
    rng = random.Random(SEED)
    for d in range(N_DIRS):
        for f in range(FILES_PER_DIR):
            idx = d * FILES_PER_DIR + f
            size = rng.randint(MIN_SIZE, MAX_SIZE)
            yield os.path.join(f"d{d:02d}", f"f{idx:05d}.bin"), size, rng.getrandbits(64)


def small_ok(small_dir):
    """True if small_dir already holds exactly the planned files with the planned sizes."""
    if not os.path.isdir(small_dir):
        return False
    plan = {rel: size for rel, size, _ in small_plan()}
    found = 0
    for root, _dirs, files in os.walk(small_dir):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), small_dir)
            if plan.get(rel) != os.path.getsize(os.path.join(root, name)):
                return False
            found += 1
    return found == len(plan)


def make_small(outdir):
    small = os.path.join(outdir, "small")
    if small_ok(small):
        print(f"gen_data: {small} already complete, reusing", file=sys.stderr)
        return
    # Build into a temporary folder and rename at the end, so an interrupted
    # run never leaves a half-filled set that looks complete.
    tmp = small + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    total = 0
    for rel, size, file_seed in small_plan():
        path = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # One RNG per file (seeded from the plan) keeps each file's content
        # independent of how the others were produced.
        with open(path, "wb") as f:
            f.write(random.Random(file_seed).randbytes(size))
        total += size
    shutil.rmtree(small, ignore_errors=True)
    os.rename(tmp, small)
    print(f"gen_data: wrote {N_DIRS * FILES_PER_DIR} files, {total} bytes to {small}",
          file=sys.stderr)


def make_big(outdir):
    big = os.path.join(outdir, "big.bin")
    link_dir = os.path.join(outdir, "big")
    link = os.path.join(link_dir, "big.bin")
    if not (os.path.isfile(big) and os.path.getsize(big) == BIG_SIZE):
        tmp = big + ".tmp"
        with open(tmp, "wb") as f:
            for _ in range(BIG_SIZE // BLOCK):
                f.write(os.urandom(BLOCK))
        os.rename(tmp, big)
        print(f"gen_data: wrote {BIG_SIZE} bytes to {big}", file=sys.stderr)
    else:
        print(f"gen_data: {big} already complete, reusing", file=sys.stderr)
    # (Re)create the hard link if missing or pointing at an older big.bin.
    os.makedirs(link_dir, exist_ok=True)
    if not (os.path.exists(link) and os.path.samefile(link, big)):
        if os.path.lexists(link):
            os.unlink(link)
        os.link(big, link)
    # Nothing else may sit in big/, or the directory-based senders send it too.
    for name in os.listdir(link_dir):
        if name != "big.bin":
            p = os.path.join(link_dir, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_data.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    make_small(outdir)
    make_big(outdir)


if __name__ == "__main__":
    main()
