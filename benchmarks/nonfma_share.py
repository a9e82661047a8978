"""How much of the student's CPU time is arithmetic that FLOP counts leave out.

FLOPs count multiply-adds (convolutions, matmuls, attention's q.k and p.v). The student also
needs arithmetic a plain CNN does not: LayerNorm's mean and variance, GELU's erf, the window
softmax's exponential. This benchmark times the student with each of these skipped in the C
kernels (``fusionlab.native.measurement_defines``: libraries compiled with the switches of
``fusionlab/native/rows.h``; the outputs are then wrong, the FLOPs the same) against the shipped
kernels, each ratio from pairs timed back to back (:func:`fusionlab.models.profile.paired_ratio`),
and then the student with all three skipped against the FLOP-matched plain CNN of
``model_efficiency.py``. The last row is what the student / plain-CNN ratio would be if that
arithmetic were free: the part of the gap its multiply-adds alone leave.

Usage::

    python benchmarks/nonfma_share.py [--threads 2] [--pairs 16] [--size 480x640]

Needs the C kernels (a C compiler and AVX-512); exits with a one-line message otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # same process settings as model_efficiency.py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_efficiency import plain_cnn  # noqa: E402

import torch  # noqa: E402

from fusionlab import native  # noqa: E402
from fusionlab.cli.profile import parse_size  # noqa: E402
from fusionlab.errors import UsageError  # noqa: E402
from fusionlab.models import create_model  # noqa: E402
from fusionlab.models.profile import count_flops, paired_ratio  # noqa: E402
from fusionlab.models.runtime import tune_cpu_allocator  # noqa: E402

SWITCHES = {
    "LayerNorm mean and variance": ("FUSIONLAB_SKIP_LAYERNORM_STATS",),
    "GELU's erf": ("FUSIONLAB_SKIP_GELU_ERF",),
    "window softmax's exp": ("FUSIONLAB_SKIP_SOFTMAX_EXP",),
    "all three": native.MEASUREMENT_DEFINES,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=16, help="pairs timed back to back per ratio")
    ap.add_argument("--size", default="480x640", help="HxW of the random pair")
    args = ap.parse_args(argv)
    if args.pairs < 2:
        ap.error("--pairs must be at least 2 (a ratio's interval needs two pairs)")
    try:
        h, w = parse_size(args.size)
    except UsageError as e:
        ap.error(str(e))

    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    if native.load("restormer") is None:
        print("the C kernels are unavailable here (see the warning above): nothing to measure", file=sys.stderr)
        return 1
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(0))
    student = create_model("dtpf_student").eval()
    flops = count_flops(student, x, x)
    cnn = plain_cnn(flops, size=(h, w)).eval()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {h}x{w}, {args.pairs} pairs per ratio, "
          f"student {flops / 1e9:.1f} GFLOPs, plain CNN {count_flops(cnn, x, x) / 1e9:.1f} GFLOPs, "
          f"load average {os.getloadavg()[0]:.1f} at start\n")

    def skipped(defines):
        def run():
            with native.measurement_defines(*defines):
                student(x, x)
        return run

    def row(label, a, b):
        r = paired_ratio(a, b, repeats=args.pairs)
        print(f"| {label} | {r} |", flush=True)
        return r.ratio

    print("| ratio (time / time) | geometric mean of the pairs (95 % interval) |\n|---|---|")
    with torch.no_grad():
        shipped = student(x, x)
        without = {}
        for what, defines in SWITCHES.items():
            with native.measurement_defines(*defines):  # build (once) and check the switch took
                changed = (student(x, x) - shipped).abs().max().item()
            if changed == 0:
                print(f"{what}: the switched build gave the shipped outputs - switch not applied", file=sys.stderr)
                return 1
            without[what] = row(f"student without {what} / student", skipped(defines), lambda: student(x, x))
        with_it = row("student / plain CNN", lambda: student(x, x), lambda: cnn(x, x))
        free = row("student without all three / plain CNN", skipped(native.MEASUREMENT_DEFINES), lambda: cnn(x, x))
    print(f"\nThe arithmetic FLOPs leave out costs {1 - without['all three']:.1%} of the student's time here; "
          f"with it free the student would take {free:.2f}x the plain CNN's time (measured {with_it:.2f}x with it).")
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
