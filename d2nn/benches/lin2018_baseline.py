#!/usr/bin/env python3
"""Training throughput of the `lin2018` network: PyTorch against photonflow, side by side.

The PyTorch network is written the way Python D2NN codes (LightRidge, torchoptics, the
published D2NN re-implementations) write it, with the same physics as the preset: 5 phase-only
layers of 200x200 neurons at 0.4 mm, lambda = 0.75 mm, 3 cm gaps, band-limited angular spectrum
with 2x zero padding (pad -> fft2 -> x H -> ifft2 -> crop, H cached), the 28x28 digit resampled
bilinearly onto the central 160x160 neurons as amplitude, 10 square 6.4 mm detectors (3-4-3),
energy shares -> softmax(./T) -> cross-entropy, Adam, batch 32. Real MNIST batches.

    python3 d2nn/benches/lin2018_baseline.py --photonflow target/release/photonflow \
        [--threads 2] [--samples 1600] [--data DIR]

Prints training samples/s of both (forward + backward + Adam step, evaluation excluded), the
ratio, and the wall time one 60 000-sample epoch takes at that rate. The photonflow side runs
`photonflow train --preset lin2018 --train-limit N --test-limit 100 --epochs 1 --json` and reads
its `samples_per_s`. MNIST is read from --data, $PHOTONFLOW_DATA_DIR or the user cache.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N, PAD, PITCH, WAVELENGTH, GAP, LAYERS, INPUT = 200, 400, 0.4e-3, 0.75e-3, 0.03, 5, 160
DETECTOR, GAP_DET, T, LR, BATCH = 16, 16, 0.03, 0.05, 32


def mnist_dir(data):
    for base in filter(None, [data, os.environ.get("PHOTONFLOW_DATA_DIR"),
                              os.path.expanduser("~/.cache/photonflow/datasets")]):
        for d in (Path(base), Path(base) / "mnist"):
            if any(d.glob("train-images-idx3-ubyte*")):
                return d
    sys.exit("MNIST not found: pass --data DIR (holding mnist/) or set PHOTONFLOW_DATA_DIR")


def read_idx(path):
    raw = gzip.open(path).read() if str(path).endswith(".gz") else open(path, "rb").read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def transfer(m):
    """Band-limited ASM transfer function on the m x m padded grid (Matsushima 2009)."""
    f = np.fft.fftfreq(m, PITCH)
    fx, fy = np.meshgrid(f, f)
    s2 = (WAVELENGTH * fx) ** 2 + (WAVELENGTH * fy) ** 2
    k = 2 * np.pi / WAVELENGTH
    h = np.exp(1j * k * GAP * np.sqrt(np.maximum(0.0, 1.0 - s2)))
    h[s2 > 1] = 0
    limit = 1.0 / (WAVELENGTH * np.sqrt((2 * GAP / (m * PITCH)) ** 2 + 1))
    h[(np.abs(fx) > limit) | (np.abs(fy) > limit)] = 0
    return h.astype(np.complex64)


def detector_weights():
    """10 square regions, 3-4-3 rows, centred, as [10, N, N] 0/1 masks."""
    w = np.zeros((10, N, N), np.float32)
    step = DETECTOR + GAP_DET
    rows = [(-1, 3), (0, 4), (1, 3)]
    c = 0
    for r, count in rows:
        y = N // 2 + r * step - DETECTOR // 2
        for j in range(count):
            x = N // 2 + int((j - (count - 1) / 2) * step) - DETECTOR // 2
            w[c, y:y + DETECTOR, x:x + DETECTOR] = 1
            c += 1
    return w


def torch_rate(images, labels, threads, samples):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    h = torch.from_numpy(transfer(PAD))
    weights = torch.from_numpy(detector_weights())
    o = (PAD - N) // 2

    class D2NN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.phase = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.rand(N, N) * 2 * np.pi - np.pi) for _ in range(LAYERS)])

        @staticmethod
        def propagate(u):
            p = torch.nn.functional.pad(u, (o, o, o, o))
            return torch.fft.ifft2(torch.fft.fft2(p) * h)[:, o:o + N, o:o + N]

        def forward(self, x):
            a = torch.nn.functional.interpolate(x[:, None], size=(INPUT, INPUT), mode="bilinear",
                                                align_corners=False)[:, 0]
            s = (N - INPUT) // 2
            u = torch.zeros(x.shape[0], N, N, dtype=torch.complex64)
            u[:, s:s + INPUT, s:s + INPUT] = a.to(torch.complex64)
            u = self.propagate(u)
            for phi in self.phase:
                u = self.propagate(u * torch.exp(1j * phi))
            e = torch.einsum("bij,cij->bc", u.real ** 2 + u.imag ** 2, weights)
            return e / (e.sum(1, keepdim=True) + 1e-12)

    model = D2NN()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x = torch.from_numpy(images.astype(np.float32) / 255)
    y = torch.from_numpy(labels.astype(np.int64))

    def step(i):
        xb, yb = x[i:i + BATCH], y[i:i + BATCH]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xb) / T, yb)
        loss.backward()
        opt.step()

    step(0)  # warm-up
    t = time.perf_counter()
    done = 0
    for i in range(BATCH, BATCH + samples, BATCH):
        step(i)
        done += BATCH
    return done / (time.perf_counter() - t), torch.__version__


def photonflow_rate(binary, data, threads, samples):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [binary, "--threads", str(threads), "train", "--preset", "lin2018", "--data", str(data),
             "--train-limit", str(samples), "--test-limit", "100", "--epochs", "1", "--json",
             "--no-plots", "--out", str(Path(d) / "run")],
            check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photonflow", help="the photonflow binary (omit to time PyTorch only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=1600, help="training samples timed")
    ap.add_argument("--data", help="folder holding mnist/")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    d = mnist_dir(args.data)
    images = read_idx(next(d.glob("train-images-idx3-ubyte*")))[:args.samples + 2 * BATCH]
    labels = read_idx(next(d.glob("train-labels-idx1-ubyte*")))[:args.samples + 2 * BATCH]
    torch_sps, version = torch_rate(images, labels, args.threads, args.samples)
    print(f"lin2018 training, batch {BATCH}, {args.threads} threads, {args.samples} samples timed")
    print("| implementation | samples/s | one 60 000-sample epoch |")
    print("|---|---:|---:|")
    print(f"| PyTorch {version} | {torch_sps:.1f} | {60000 / torch_sps / 60:.1f} min |")
    if args.photonflow:
        pf = photonflow_rate(args.photonflow, d, args.threads, args.samples)
        print(f"| photonflow | {pf:.1f} | {60000 / pf / 60:.1f} min |")
        print(f"photonflow / PyTorch = {pf / torch_sps:.2f}x")


if __name__ == "__main__":
    main()
