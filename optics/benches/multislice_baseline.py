#!/usr/bin/env python3
"""Baseline for `cargo bench -p photonflow-optics --bench multislice`: the same multislice sweep
in NumPy, as a Python tool writes it — the field zero-padded 2x into a window of background
medium, then per slice: fft2 -> x the band-limited angular-spectrum transfer function (evanescent
waves decaying) -> ifft2
-> x the slice's phase screen on the grid's part of the window (half steps at both ends), the
transfer functions and screens computed once, complex64 throughout (numpy.fft keeps single
precision since NumPy 2), one thread.

    python3 optics/benches/multislice_baseline.py [--sizes 128,256,512] [--slices 64] [--reps 5]

Prints one JSON object: seconds per sweep (median and best of --reps after a warm-up) per size,
and the exit field's power and centre sample, which the Rust bench checks against its own.
"""

import argparse
import json
import statistics
import time

import numpy as np

WAVELENGTH = 532e-9
INDEX = 1.333
PITCH = 0.1e-6
DZ = 0.1e-6


def transfer(m, dz, thickness):
    lam = WAVELENGTH / INDEX
    f = np.fft.fftfreq(m, PITCH)
    fx, fy = np.meshgrid(f, f)
    s2 = (lam * fx) ** 2 + (lam * fy) ** 2
    k = 2 * np.pi / lam
    # propagating waves turn, evanescent ones decay
    h = np.where(s2 <= 1, np.exp(1j * k * dz * np.sqrt(np.abs(1 - s2))), np.exp(-k * dz * np.sqrt(np.abs(s2 - 1))))
    limit = 1 / (lam * np.sqrt((2 * thickness / (m * PITCH)) ** 2 + 1))
    keep = (np.abs(fx) <= limit) & (np.abs(fy) <= limit)
    return (h * keep).astype(np.complex64)


def setup(n, nz):
    m = 2 * n
    thickness = nz * DZ
    x = (np.arange(n) - n // 2) * PITCH
    z = (np.arange(nz) + 0.5) * DZ
    zz, yy, xx = np.meshgrid(z, x, x, indexing="ij")
    r = np.sqrt(xx**2 + yy**2 + (zz - thickness / 2) ** 2)
    index = np.where(r < n * PITCH / 4, 1.46, INDEX)
    k0 = 2 * np.pi / WAVELENGTH
    screens = np.exp(1j * k0 * (index - INDEX) * DZ).astype(np.complex64)
    return transfer(m, DZ, thickness), transfer(m, DZ / 2, thickness), screens


def sweep(field, full, half, screens):
    n = field.shape[0]
    m = 2 * n
    o = (m - n) // 2
    w = np.zeros((m, m), np.complex64)
    w[o : o + n, o : o + n] = field
    w = np.fft.ifft2(np.fft.fft2(w) * half)
    for j in range(len(screens)):
        w[o : o + n, o : o + n] *= screens[j]
        if j + 1 < len(screens):
            w = np.fft.ifft2(np.fft.fft2(w) * full)
    w = np.fft.ifft2(np.fft.fft2(w) * half)
    return w[o : o + n, o : o + n]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="128,256,512")
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    out = {"numpy": np.__version__, "slices": a.slices, "sizes": {}}
    for n in map(int, a.sizes.split(",")):
        full, half, screens = setup(n, a.slices)
        field = np.ones((n, n), np.complex64)
        exit_face = sweep(field, full, half, screens)
        assert exit_face.dtype == np.complex64
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            sweep(field, full, half, screens)
            times.append(time.perf_counter() - t)
        centre = exit_face[n // 2, n // 2]
        out["sizes"][n] = {
            "median": statistics.median(times),
            "best": min(times),
            "power": float(np.sum(np.abs(exit_face) ** 2)),
            "centre": [float(centre.real), float(centre.imag)],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
