#!/usr/bin/env python3
"""Baseline for `cargo bench -p photonflow-optics --bench propagate`: the same band-limited
angular-spectrum propagation of a batch of 8 complex64 fields, written the way Python optics
codes write it (pad -> fft2 -> multiply by a cached transfer function -> ifft2 -> crop), with
numpy.fft and torch.fft on the same machine.

    python3 optics/benches/asm_baseline.py [--sizes 200,256,400] [--threads 2] [--reps 7]

Prints fields/s per size, median and best of --reps runs after a warm-up, as a Markdown table and
one JSON object per line with --json. torch is optional (skipped when missing).
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

BATCH = 8
WAVELENGTH = 632.8e-9
PITCH = 8e-6
DISTANCE = 5e-3


def transfer(m):
    """Band-limited ASM transfer function on an m x m padded grid (Matsushima 2009)."""
    f = np.fft.fftfreq(m, PITCH)
    fx, fy = np.meshgrid(f, f)
    k = 2 * np.pi / WAVELENGTH
    s2 = (WAVELENGTH * fx) ** 2 + (WAVELENGTH * fy) ** 2
    kz = k * np.sqrt(np.maximum(0.0, 1.0 - s2))
    h = np.exp(1j * kz * DISTANCE)
    h[s2 > 1] = np.exp(-k * DISTANCE * np.sqrt(s2[s2 > 1] - 1))
    limit = 1.0 / (WAVELENGTH * np.sqrt((2 * DISTANCE / (m * PITCH)) ** 2 + 1))
    h[(np.abs(fx) > limit) | (np.abs(fy) > limit)] = 0
    return h.astype(np.complex64)


def field(n):
    i = np.arange(BATCH * n * n, dtype=np.float32)
    return (np.sin(i * 0.37) + 1j * np.cos(i * 0.11)).astype(np.complex64).reshape(BATCH, n, n)


def timed(fn, reps):
    """(median, best) time of `reps` runs after a warm-up, like the Rust benchmark's table."""
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def rates(fn, reps):
    median, best = timed(fn, reps)
    return {"median": BATCH / median, "best": BATCH / best}


def numpy_runs(n, reps):
    u = field(n)
    out = {}
    for name, m in (("linear", 2 * n), ("circular", n)):
        h = transfer(m)
        o = m // 2 - n // 2

        def step():
            p = np.zeros((BATCH, m, m), np.complex64)
            p[:, o:o + n, o:o + n] = u
            v = np.fft.ifft2(np.fft.fft2(p) * h)
            return v[:, o:o + n, o:o + n].astype(np.complex64)

        out[name] = rates(step, reps)
    return out


def torch_runs(n, reps, torch):
    u = torch.from_numpy(field(n))
    out = {}
    for name, m in (("linear", 2 * n), ("circular", n)):
        h = torch.from_numpy(transfer(m))
        o = m // 2 - n // 2

        def step():
            with torch.no_grad():
                p = torch.nn.functional.pad(u, (o, m - n - o, o, m - n - o))
                v = torch.fft.ifft2(torch.fft.fft2(p) * h)
                return v[:, o:o + n, o:o + n].contiguous()

        out[name] = rates(step, reps)
    return out


def torch_layer(n, reps, torch):
    """One diffractive layer, forward + backward with autograd, batch 32, like
    `cargo bench -p photonflow-d2nn --bench layer`: u·exp(iφ) -> pad -> fft2 -> ×H
    -> ifft2 -> crop, loss Σ w·(Re, Im), gradient w.r.t. φ."""
    b, m = 32, 2 * n
    o = m // 2 - n // 2
    h = torch.from_numpy(transfer(m))
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, n, n, dtype=torch.complex64, generator=g)
    w = torch.randn(b, n, n, 2, generator=g)
    phi = (torch.rand(n, n, generator=g) * 6 - 3).requires_grad_()

    def step():
        phi.grad = None
        v = u * torch.exp(1j * phi)
        p = torch.nn.functional.pad(v, (o, m - n - o, o, m - n - o))
        out = torch.fft.ifft2(torch.fft.fft2(p) * h)[:, o:o + n, o:o + n]
        (torch.view_as_real(out) * w).sum().backward()

    median, best = timed(step, reps)
    return {"median": b / median, "best": b / best}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,256,400,512,1024,2048")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--layer", action="store_true",
                    help="time one diffractive layer forward+backward (torch autograd, batch 32) instead")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.layer:
        if torch is None:
            raise SystemExit("--layer needs torch")
        print(f"torch {torch.__version__}, one layer forward+backward, batch 32, {args.threads} threads")
        for n in sizes:
            r = torch_layer(n, args.reps, torch)
            print(f"N = {n}: {r['median']:.1f} samples/s (median), {r['best']:.1f} (best)", flush=True)
        return
    rows = []
    for n in sizes:
        reps = args.reps if n <= 512 else max(3, args.reps // 2)
        row = {"n": n, "batch": BATCH, "numpy": numpy_runs(n, reps)}
        if torch is not None:
            row["torch"] = torch_runs(n, reps, torch)
            row["torch_version"] = torch.__version__
        row["numpy_version"] = np.__version__
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print(f"fields/s (median / best of {args.reps}), batch {BATCH} complex64, band-limited ASM, {args.threads} threads")
        print("| N | numpy linear 2x | numpy circular | torch linear 2x | torch circular |")
        print("|---:|---:|---:|---:|---:|")
        fmt = lambda d: f"{d['median']:.1f} / {d['best']:.1f}" if d else "n/a"
        for r in rows:
            t = r.get("torch", {})
            print(f"| {r['n']} | {fmt(r['numpy']['linear'])} | {fmt(r['numpy']['circular'])} | "
                  f"{fmt(t.get('linear'))} | {fmt(t.get('circular'))} |")

if __name__ == "__main__":
    main()
