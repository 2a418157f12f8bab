#!/usr/bin/env python3
"""`photonflow hologram` against weighted Gerchberg–Saxton in NumPy, side by side.

    python3 optics/benches/hologram_baseline.py [--bin target/release/photonflow]
        [--sizes 512,1024] [--iterations 100] [--reps 3] [--json]

The problem: a Fourier hologram of a 10×10 spot array for an N×N SLM (8 µm pixels, 532 nm,
f = 200 mm, uniform beam) in a 2N×2N window, weighted GS with the target-plane phase fixed
after half the iterations (Kim et al. 2019), complex64. photonflow runs it from the command
line (its own timing, `--json`'s `seconds`: planning, the iterations, 10 more through 8-bit gray
levels and the final evaluation; not the files); NumPy runs the same continuous iterations the
way slmsuite's CPU path does (`np.fft.fft2` on the padded window, `ifftshift`/`fftshift`,
weights on the spot pixels), timed around the loop only. Prints median seconds per run, the
ratio (NumPy ÷ photonflow) and both uniformities. NumPy's FFT is single-threaded; photonflow
uses the machine's cores (`RAYON_NUM_THREADS` limits them).
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np


def numpy_wgs(n, iterations, spots_px, fix_after):
    m = 2 * n
    rng = np.random.default_rng(1)
    phase = rng.uniform(0, 2 * np.pi, (n, n)).astype(np.float32)
    amp = np.ones((n, n), np.float32) / n
    o = m // 2 - n // 2
    rows = np.array([r for r, _ in spots_px])
    cols = np.array([c for _, c in spots_px])
    weights = np.ones(len(spots_px), np.float32)
    target = np.full(len(spots_px), 1 / np.sqrt(len(spots_px)), np.float32)
    fixed = None
    window = np.zeros((m, m), np.complex64)
    start = time.perf_counter()
    for it in range(iterations):
        window[:] = 0
        window[o:o + n, o:o + n] = amp * np.exp(1j * phase)
        far = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(window), norm="ortho"))
        u = far[rows, cols]
        r = np.abs(u) / target
        weights *= r.mean() / r
        if it == fix_after:
            fixed = u / np.abs(u)
        direction = fixed if fixed is not None else u / np.abs(u)
        far[:] = 0
        far[rows, cols] = direction * target * weights
        back = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(far), norm="ortho"))
        phase = np.angle(back[o:o + n, o:o + n]).astype(np.float32)
    seconds = time.perf_counter() - start
    window[:] = 0
    window[o:o + n, o:o + n] = amp * np.exp(1j * phase)
    far = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(window), norm="ortho"))) ** 2
    p = far[rows, cols]
    return seconds, 1 - (p.max() - p.min()) / (p.max() + p.min())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "photonflow"))
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for n in [int(s) for s in a.sizes.split(",")]:
        m = 2 * n
        pitch = 532e-9 * 0.2 / (m * 8e-6)
        spacing = 12  # target pixels
        spots_px = [(m // 2 + (k // 10 - 5) * spacing, m // 2 + (k % 10 - 5) * spacing)
                    for k in range(100)]
        ours, np_times = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(a.reps):
                out = subprocess.run(
                    [a.bin, "hologram", "--spots", f"10x10@{spacing * pitch * 1e6:.6f}um",
                     "--centre", f"{-0.5 * spacing * pitch * 1e6:.6f}um,{-0.5 * spacing * pitch * 1e6:.6f}um",
                     "--wavelength", "532nm", "--slm", f"{n}x{n}@8um", "--focal", "200mm",
                     "--iterations", str(a.iterations), "--out", tmp, "--json"],
                    check=True, capture_output=True, text=True).stdout
                report = json.loads(out.strip().splitlines()[-1])
                ours.append(report["seconds"])
                s, uni = numpy_wgs(n, a.iterations, spots_px, a.iterations // 2)
                np_times.append(s)
        row = {
            "n": n,
            "photonflow_s": statistics.median(ours),
            "numpy_s": statistics.median(np_times),
            "photonflow_uniformity": report["quality"]["uniformity"],
            "numpy_uniformity": float(uni),
        }
        row["ratio"] = row["numpy_s"] / row["photonflow_s"]
        rows.append(row)
        if not a.json:
            print(f"N = {n:5} ({m}² window, {a.iterations} iterations): photonflow "
                  f"{row['photonflow_s']:.2f} s, NumPy {row['numpy_s']:.2f} s, ratio "
                  f"{row['ratio']:.2f}; uniformity {row['photonflow_uniformity']:.4f} vs "
                  f"{row['numpy_uniformity']:.4f}")
    if a.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
