"""The Clements decomposition in NumPy, O(N^3): the baseline of `cargo bench -p
photonflow-compiler --bench mesh`.

The same algorithm as photonflow's (compiler/src/mesh/decompose.rs), written the way a
careful NumPy user would: each nulling updates only the two rows or columns it touches, as
vectorised slices (the common Python libraries multiply full N x N matrices per MZI, O(N^5)).
Same MZI convention, so the result reconstructs the input to rounding (checked).

Usage: python3 mesh_baseline.py [--sizes 64,256,1024] [--reps 3]
Prints one JSON object per size: {"n", "median_s", "best_s", "error"}.

python3 mesh_baseline.py --serve: reads one size per line from standard input, decomposes the
same Haar-random unitary of that size once per line, and answers each with one JSON object
{"n", "seconds"}: the benchmark alternates these runs with its own.
"""

import argparse
import json
import sys
import time

import numpy as np


def transfer(theta, phi):
    s, c = np.sin(theta / 2), np.cos(theta / 2)
    g = 1j * np.exp(1j * theta / 2)
    e = np.exp(1j * phi)
    return np.array([[g * e * s, g * c], [g * e * c, -g * s]])


def clements(u):
    n = u.shape[0]
    w = u.copy()
    right, left = [], []
    for i in range(n - 1):
        if i % 2 == 0:
            for j in range(i + 1):
                r, k = n - 1 - j, i - j
                a, b = w[r, k], w[r, k + 1]
                theta = 2 * np.arctan2(abs(b), abs(a))
                phi = 0.0 if a == 0 or b == 0 else np.angle(a) - np.angle(b) - np.pi
                t = transfer(theta, phi).conj().T
                cols = w[: r + 1, k : k + 2].copy()
                w[: r + 1, k : k + 2] = cols @ t
                right.append((k, theta, phi))
        else:
            for j in range(1, i + 2):
                k, c = n + j - i - 3, j - 1
                a, b = w[k, c], w[k + 1, c]
                theta = 2 * np.arctan2(abs(a), abs(b))
                phi = 0.0 if a == 0 or b == 0 else np.angle(b) - np.angle(a)
                rows = w[k : k + 2, c:].copy()
                w[k : k + 2, c:] = transfer(theta, phi) @ rows
                left.append((k, theta, phi))
    d = np.diag(w).copy()
    ops = list(right)
    for k, theta, phi in reversed(left):
        d1, d2 = d[k], d[k + 1]
        phi2 = np.angle(d1 / d2)
        d[k] = -np.exp(-1j * (theta + phi)) * d2
        d[k + 1] = -np.exp(-1j * theta) * d2
        ops.append((k, theta, phi2))
    return ops, np.angle(d)


def reconstruct(n, ops, out):
    m = np.eye(n, dtype=complex)
    for k, theta, phi in ops:
        m[k : k + 2, :] = transfer(theta, phi) @ m[k : k + 2, :]
    return np.exp(1j * out)[:, None] * m


def haar(n, rng):
    z = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2)
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / abs(np.diag(r)))


def serve():
    unitaries = {}
    for line in sys.stdin:
        n = int(line)
        if n not in unitaries:
            unitaries[n] = haar(n, np.random.default_rng(n))
        t = time.perf_counter()
        clements(unitaries[n])
        print(json.dumps({"n": n, "seconds": time.perf_counter() - t}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="64,256,1024")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--serve", action="store_true")
    a = p.parse_args()
    if a.serve:
        serve()
        return
    rng = np.random.default_rng(1)
    for n in [int(s) for s in a.sizes.split(",")]:
        u = haar(n, rng)
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            ops, out = clements(u)
            times.append(time.perf_counter() - t)
        err = np.linalg.norm(reconstruct(n, ops, out) - u) / np.linalg.norm(u) if n <= 256 else None
        times.sort()
        print(json.dumps({"n": n, "median_s": times[len(times) // 2], "best_s": times[0], "error": err}), flush=True)


if __name__ == "__main__":
    main()
