#!/usr/bin/env python3
"""Baseline for `cargo bench -p photonflow-optics --bench fpm`: one evaluation of the Fourier
ptychography amplitude misfit and its gradient w.r.t. the object, in NumPy as a Python FPM
code writes it (batched fft2 over the LEDs, each LED's sub-spectrum cropped from the
fftshifted object spectrum and added back per LED), float64/complex128, one thread.

The model is photonflow's exactly (even sizes): LED k at (x, y) in a plane HEIGHT below the
sample lights it with the direction s = -(x, y)/r; its offset s/lambda is split into whole
spectral samples (the crop) and a remainder delta, at which the pupil disc is evaluated.

    python3 optics/benches/fpm_baseline.py [--sizes 64,128] [--leds 15] [--reps 5]

Prints one JSON object: per camera size, seconds per evaluation (median and best of --reps
after a warm-up), the misfit and the gradient's squared norm, which the Rust bench checks.
"""

import argparse
import json
import statistics
import time

import numpy as np

WAVELENGTH = 0.5e-6
NA = 0.1
PITCH = 2e-6
UPSAMPLE = 4
LED_PITCH = 2e-3
HEIGHT = 60e-3


def objects(big):
    j, i = np.meshgrid(np.arange(big), np.arange(big), indexing="ij")
    guess = (1 + 0.2 * np.cos(0.05 * i + 0.03 * j)) * np.exp(1j * 0.5 * np.sin(0.04 * i - 0.07 * j))
    truth = (1 + 0.3 * np.cos(0.11 * i - 0.05 * j)) * np.exp(1j * 0.8 * np.sin(0.09 * i + 0.06 * j))
    return guess, truth


def setup(n, leds):
    big = n * UPSAMPLE
    df = 1 / (n * PITCH)
    cut = NA / WAVELENGTH
    q = np.arange(n) - n // 2
    pupils, starts = [], []
    for r in range(leds):
        for c in range(leds):
            x = (c - (leds - 1) / 2) * LED_PITCH
            y = (r - (leds - 1) / 2) * LED_PITCH
            d = np.sqrt(x * x + y * y + HEIGHT * HEIGHT)
            fx, fy = -x / d / WAVELENGTH, -y / d / WAVELENGTH
            nx, ny = round(fx / df), round(fy / df)
            px = q * df + (fx - nx * df)
            py = q * df + (fy - ny * df)
            pupils.append((np.hypot(px[None, :], py[:, None]) <= cut).astype(np.complex128))
            starts.append((big // 2 - n // 2 - ny, big // 2 - n // 2 - nx))
    return np.array(pupils), starts


def fields(spectrum, pupils, starts, n, big):
    sub = np.empty(pupils.shape, np.complex128)
    for k, (y0, x0) in enumerate(starts):
        sub[k] = pupils[k] * spectrum[y0 : y0 + n, x0 : x0 + n]
    return np.fft.ifft2(np.fft.ifftshift(sub, axes=(1, 2))) * (n * n / (big * big))


def misfit(obj, amplitudes, pupils, starts, n, big, norm):
    spectrum = np.fft.fftshift(np.fft.fft2(obj))
    g = fields(spectrum, pupils, starts, n, big)
    m = np.abs(g)
    r = m - amplitudes
    value = np.sum(r * r) / norm
    w = np.where(m > 0, g * (r / np.where(m > 0, m, 1) / norm), 0)
    v = np.fft.fftshift(np.fft.fft2(w), axes=(1, 2)) / (big * big)
    d = np.zeros((big, big), np.complex128)
    for k, (y0, x0) in enumerate(starts):
        d[y0 : y0 + n, x0 : x0 + n] += np.conj(pupils[k]) * v[k]
    grad = 2 * np.fft.ifft2(np.fft.ifftshift(d)) * (big * big)
    return value, grad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,128")
    ap.add_argument("--leds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    out = {"numpy": np.__version__, "leds": a.leds, "sizes": {}}
    for n in [int(s) for s in a.sizes.split(",")]:
        big = n * UPSAMPLE
        pupils, starts = setup(n, a.leds)
        guess, truth = objects(big)
        spectrum = np.fft.fftshift(np.fft.fft2(truth))
        amplitudes = np.abs(fields(spectrum, pupils, starts, n, big))
        norm = np.sum(amplitudes**2)
        value, grad = misfit(guess, amplitudes, pupils, starts, n, big, norm)
        times = []
        for rep in range(a.reps + 1):
            t = time.perf_counter()
            misfit(guess, amplitudes, pupils, starts, n, big, norm)
            if rep:
                times.append(time.perf_counter() - t)
        out["sizes"][str(n)] = {
            "median": statistics.median(times),
            "best": min(times),
            "misfit": float(value),
            "gradient": float(np.sum(np.abs(grad) ** 2)),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
