#!/usr/bin/env python3
"""Baseline for `cargo bench -p photonflow-optics --bench window`: the scalable angular
spectrum (Heintzmann, Loetgering & Wechsler, Optica 2023) of a batch of 8 complex64 fields over
1 m onto its natural window, written as the authors' reference code writes it (pad 2x -> fft2 ->
x precompensation -> ifft2 -> x chirp -> fft2 -> x chirp -> crop), factors cached, numpy.fft.

    python3 optics/benches/window_baseline.py [--sizes 256,512,1024] [--reps 7] [--json]

Prints fields/s per size, median and best of --reps runs after a warm-up.
"""

import argparse
import json
import statistics
import time

import numpy as np

BATCH = 8
WAVELENGTH = 632.8e-9
PITCH = 8e-6
DISTANCE = 1.0


def factors(n):
    m = 2 * n
    k = 2 * np.pi / WAVELENGTH
    f = np.fft.fftfreq(m, PITCH)
    fx, fy = np.meshgrid(f, f)
    cx, cy = WAVELENGTH * fx, WAVELENGTH * fy
    half = m * PITCH / 2
    tx, ty = half / DISTANCE + np.abs(cx), half / DISTANCE + np.abs(cy)
    band = (cx**2 * (1 + tx**2) / tx**2 + cy**2 <= 1) & (cy**2 * (1 + ty**2) / ty**2 + cx**2 <= 1)
    s2 = cx**2 + cy**2
    dh = band * np.exp(1j * k * DISTANCE * (np.sqrt(np.maximum(0, 1 - s2)) - 1 + s2 / 2))
    x = np.fft.ifftshift((np.arange(m) - m // 2) * PITCH)
    xx, yy = np.meshgrid(x, x)
    q1 = np.exp(1j * k / (2 * DISTANCE) * (xx**2 + yy**2))
    dq = WAVELENGTH * DISTANCE / (m * PITCH)
    q = np.fft.ifftshift((np.arange(m) - m // 2) * dq)
    qx, qy = np.meshgrid(q, q)
    q2 = np.exp(1j * k * DISTANCE) * np.exp(1j * k / (2 * DISTANCE) * (qx**2 + qy**2))
    return dh.astype(np.complex64), q1.astype(np.complex64), q2.astype(np.complex64)


def sas(u, dh, q1, q2):
    n = u.shape[-1]
    p = np.zeros((u.shape[0], 2 * n, 2 * n), np.complex64)
    p[:, n // 2 : n // 2 + n, n // 2 : n // 2 + n] = u
    p = np.fft.ifftshift(p, axes=(-2, -1))
    v = np.fft.ifft2(np.fft.fft2(p) * dh)
    out = np.fft.fftshift(q2 * np.fft.fft2(q1 * v), axes=(-2, -1))
    return out[:, n // 2 : n // 2 + n, n // 2 : n // 2 + n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    print("| N | numpy sas (fields/s, median / best) |")
    print("|---:|---:|")
    for n in [int(s) for s in a.sizes.split(",")]:
        i = np.arange(BATCH * n * n, dtype=np.float32)
        u = (np.sin(0.37 * i) + 1j * np.cos(0.11 * i)).astype(np.complex64).reshape(BATCH, n, n)
        f = factors(n)
        sas(u, *f)
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            sas(u, *f)
            times.append(time.perf_counter() - t)
        med, best = BATCH / statistics.median(times), BATCH / min(times)
        print(f"| {n} | {med:.1f} / {best:.1f} |")
        if a.json:
            print(json.dumps({"n": n, "numpy_sas_median": med, "numpy_sas_best": best}))


if __name__ == "__main__":
    main()
