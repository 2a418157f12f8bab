#!/usr/bin/env python3
"""`photonflow deconvolve` against Richardson–Lucy in NumPy, side by side, on the same data.

    python3 optics/benches/deconvolve_baseline.py [--bin target/release/photonflow]
        [--iterations 50] [--reps 3] [--json]

Cases: a 64×64×64 stack with a 15³ PSF and a 512×512 image with a 31² PSF (a blurred random
scene, Poisson noise). Each is written as float32 TIFF, deconvolved by the photonflow binary
(its own timing, `--json`'s `seconds`, plan included) and by two NumPy versions of the same
iterations, in float32:

- `skimage-style`: what `skimage.restoration.richardson_lucy` does — every iteration two
  `fftconvolve(..., mode="same")` calls, each transforming the PSF again (real FFTs, padded as
  SciPy pads: to the linear size rounded up to factors 2, 3, 5, 7);
- `numpy, OTF cached`: the same with the PSF's transform computed once (what a careful user
  writes).

Neither NumPy version treats the edges (they divide by the blurred data at the border as if
the scene ended there); photonflow's masked form does a little more work per iteration. Prints
median seconds per run and the ratios (NumPy ÷ photonflow). NumPy's FFTs are single-threaded;
photonflow uses the machine's cores (`RAYON_NUM_THREADS` limits them).
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import tempfile
import time

import numpy as np


def write_tiff(path, a):
    """A minimal multi-page float32 TIFF (little endian, uncompressed, one strip a page)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    nz, ny, nx = a.shape
    out = bytearray(b"II*\x00" + struct.pack("<I", 0))
    offsets = []
    for k in range(nz):
        offsets.append(len(out))
        out += a[k].tobytes()
    prev = 4
    for k in range(nz):
        ifd = len(out)
        struct.pack_into("<I", out, prev, ifd)
        tags = [
            (256, 4, 1, nx), (257, 4, 1, ny), (258, 3, 1, 32), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, offsets[k]), (277, 3, 1, 1), (278, 4, 1, ny),
            (279, 4, 1, nx * ny * 4), (339, 3, 1, 3),
        ]
        out += struct.pack("<H", len(tags))
        for tag, typ, count, value in tags:
            v = struct.pack("<H", value) + b"\x00\x00" if typ == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, typ, count) + v
        prev = len(out)
        out += struct.pack("<I", 0)
    with open(path, "wb") as f:
        f.write(out)


def gaussian_psf(shape, sigma):
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    r2 = sum((g / s) ** 2 for g, s in zip(grids, sigma))
    p = np.exp(-r2 / 2)
    return (p / p.sum()).astype(np.float32)


def next_fast_len(n):
    """The smallest size >= n with factors 2, 3, 5, 7 (scipy.fft.next_fast_len's rule)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def fftconvolve_same(a, b, b_hat=None, fshape=None):
    """`scipy.signal.fftconvolve(a, b, mode="same")` with real FFTs (b_hat: b's cached rfftn)."""
    if b_hat is None:
        fshape = [next_fast_len(n + m - 1) for n, m in zip(a.shape, b.shape)]
        b_hat = np.fft.rfftn(b, fshape, axes=range(b.ndim))
    full = np.fft.irfftn(np.fft.rfftn(a, fshape, axes=range(a.ndim)) * b_hat, fshape, axes=range(a.ndim))
    start = [(m - 1) // 2 for m in b.shape]
    sl = tuple(slice(s, s + n) for s, n in zip(start, a.shape))
    return full[sl].astype(np.float32)


def rl_numpy(image, psf, iterations, cached):
    flipped = psf[tuple(slice(None, None, -1) for _ in psf.shape)]
    fshape = [next_fast_len(n + m - 1) for n, m in zip(image.shape, psf.shape)]
    h = np.fft.rfftn(psf, fshape, axes=range(psf.ndim)) if cached else None
    ht = np.fft.rfftn(flipped, fshape, axes=range(psf.ndim)) if cached else None
    x = np.full(image.shape, image.mean(), dtype=np.float32)
    for _ in range(iterations):
        blurred = fftconvolve_same(x, psf, h, fshape)
        ratio = image / np.maximum(blurred, 1e-12)
        x = x * fftconvolve_same(ratio, flipped, ht, fshape)
    return x


def scene(shape, psf, rng):
    obj = np.zeros(shape, np.float32)
    idx = tuple(rng.integers(0, n, 200 if len(shape) == 3 and shape[0] > 1 else 400) for n in shape)
    obj[idx] = rng.uniform(500, 5000, len(idx[0]))
    blurred = fftconvolve_same(obj, psf)
    return rng.poisson(np.maximum(blurred, 0) + 10).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "photonflow"))
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    cases = [
        ("64×64×64, PSF 15³", (64, 64, 64), (15, 15, 15), (2.5, 1.5, 1.5)),
        ("512×512, PSF 31²", (1, 512, 512), (1, 31, 31), (1.0, 3.0, 3.0)),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, shape, pshape, sigma in cases:
            psf = gaussian_psf(pshape, sigma)
            image = scene(shape, psf, rng)
            ip, pp, op = (os.path.join(tmp, n) for n in ("image.tif", "psf.tif", "out.tif"))
            write_tiff(ip, image)
            write_tiff(pp, psf)
            cmd = [args.bin, "deconvolve", ip, "--psf", pp, "--out", op, "--iterations",
                   str(args.iterations), "--background", "0", "--centre", "none", "--json"]
            pf = []
            for _ in range(args.reps):
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                pf.append(json.loads(out.strip().splitlines()[-1])["seconds"])
            squeeze = image[0] if shape[0] == 1 else image
            kernel = psf[0] if shape[0] == 1 else psf
            timings = {}
            for name, cached in (("skimage-style", False), ("numpy, OTF cached", True)):
                ts = []
                rl_numpy(squeeze, kernel, 2, cached)  # warm-up
                for _ in range(args.reps):
                    t = time.perf_counter()
                    rl_numpy(squeeze, kernel, args.iterations, cached)
                    ts.append(time.perf_counter() - t)
                timings[name] = statistics.median(ts)
            row = {
                "case": label,
                "iterations": args.iterations,
                "photonflow_s": statistics.median(pf),
                **{f"{k}_s": v for k, v in timings.items()},
            }
            row["ratio_skimage_style"] = row["skimage-style_s"] / row["photonflow_s"]
            row["ratio_numpy_cached"] = row["numpy, OTF cached_s"] / row["photonflow_s"]
            rows.append(row)
            if args.json:
                print(json.dumps(row))
    print(f"\nRichardson–Lucy, {args.iterations} iterations, median of {args.reps} (seconds):\n")
    print("| case | photonflow | skimage-style NumPy | NumPy, OTF cached | ÷ skimage-style | ÷ cached |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['photonflow_s']:.2f} | {r['skimage-style_s']:.2f} | "
              f"{r['numpy, OTF cached_s']:.2f} | {r['ratio_skimage_style']:.1f}× | {r['ratio_numpy_cached']:.1f}× |")


if __name__ == "__main__":
    main()
