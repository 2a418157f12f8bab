"""The NumPy baseline of `cargo bench -p photonflow-optics --bench coherence`.

A partially coherent exposure as a NumPy user writes it: the object lit by each plane wave of
the source's directions (a batch of modes at a time), the band-limited angular spectrum
(Matsushima & Shimobaba 2009) on the 2N-padded plane with numpy's FFT, the intensities summed
with the modes' weights. Reads the workload (grid, wavelength, distance, the object's
half-width, the directions and weights the Rust side uses) from a JSON file, runs it `reps`
times, prints the seconds of each run as JSON on one line, and writes the intensity to an .npy
file for the bench to compare with its own.

Usage: python coherence_baseline.py WORKLOAD.json OUT.npy REPS
"""

import json
import sys
import time

import numpy as np


def exposure(w, chunk=16):
    n, d, lam, z = w["n"], w["pitch"], w["wavelength"], w["distance"]
    half = w["half_width"]
    x = (np.arange(n) - n // 2) * d
    X, Y = np.meshgrid(x, x)
    obj = ((np.abs(X) < half) & (np.abs(Y) < half)).astype(np.complex64)
    m = 2 * n
    f = np.fft.fftfreq(m, d)
    FX, FY = np.meshgrid(f, f)
    k = 2 * np.pi / lam
    arg = 1.0 / lam**2 - FX**2 - FY**2
    kz = 2 * np.pi * np.sqrt(np.maximum(arg, 0.0))
    H = np.where(arg > 0, np.exp(1j * kz * z), np.exp(-2 * np.pi * np.sqrt(np.maximum(-arg, 0.0)) * abs(z)))
    size = m * d
    limit = 1.0 / (lam * np.sqrt((2 * z / size) ** 2 + 1))
    H = H * ((np.abs(FX) <= limit) & (np.abs(FY) <= limit))
    H = H.astype(np.complex64)
    dirs = np.array(w["directions"])
    out = np.zeros((n, n))
    lo = n // 2
    for start in range(0, len(dirs), chunk):
        block = dirs[start : start + chunk]
        sx, sy, wt = block[:, 0], block[:, 1], block[:, 2]
        phase = k * (sx[:, None, None] * X[None] + sy[:, None, None] * Y[None])
        fields = obj[None] * np.exp(1j * phase).astype(np.complex64)
        padded = np.zeros((len(block), m, m), np.complex64)
        padded[:, lo : lo + n, lo : lo + n] = fields
        # the padded plane's centre sits at index m//2, as the field's does at n//2
        spec = np.fft.fft2(np.fft.ifftshift(padded, axes=(1, 2)))
        e = np.fft.fftshift(np.fft.ifft2(spec * H[None]), axes=(1, 2))[:, lo : lo + n, lo : lo + n]
        out += np.tensordot(wt, np.abs(e) ** 2, axes=1)
    return out


def main():
    workload, out_path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(workload) as fh:
        w = json.load(fh)
    seconds = []
    for _ in range(reps):
        t = time.perf_counter()
        image = exposure(w)
        seconds.append(time.perf_counter() - t)
    np.save(out_path, image)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
