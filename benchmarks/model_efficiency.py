"""Model efficiency benchmark: teacher vs student vs Table 6 widths, side by side in one run.

Prints the table of ``fusionlab.models.profile.profile_models`` (params, GFLOPs / GMACs,
peak memory, median wall latency and CPU time over interleaved repeats) at 480x640 and
the student/teacher latency ratio at 256x256, then checks the performance goals:

* student/teacher parameter ratio <= 0.11
* student/teacher median latency ratio <= 0.20 at 256x256 and at 480x640 (one run)
* student at 480x640 in <= 5 s

Usage::

    python benchmarks/model_efficiency.py [--threads 2] [--repeats 3] [--json out.json]

Peer context (same machine, 2 threads, random weights, 480x640, median of 3): the public
DTPF reference code needs ~108 s (teacher) and ~38 s (16-dim student), CDDFuse ~42 s,
Text-IF ~40 s per pair.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["dtpf_teacher", "dtpf_student", "dtpf_student_w32",
                                                    "dtpf_student_w48"])
    ap.add_argument("--small", type=int, default=256, help="side of the square size for the second ratio")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--omp-passive", action="store_true",
                    help="set OMP_WAIT_POLICY=PASSIVE: on a machine shared with other jobs, spinning OpenMP "
                         "threads wait for each other's time slices and multi-thread timings explode")
    args = ap.parse_args(argv)
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read by libgomp when torch loads it

    import torch

    from fusionlab.io import atomic_write_text
    from fusionlab.models.profile import format_table, profile_models, rows_to_dicts

    def log(s):
        sys.stderr.write(f"  {time.strftime('%H:%M:%S')} {s}\n")

    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}, random weights, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}, load average {load:.1f} at start")
    if load > (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} > {os.cpu_count()} cores: other jobs share the CPU, wall times "
              "are inflated; compare ratios and CPU times")
    small = profile_models(["dtpf_teacher", "dtpf_student"], size=(args.small, args.small), repeats=args.repeats,
                           threads=args.threads, memory=False, progress=log)
    print(f"\n### {args.small}x{args.small}\n")
    print(format_table(small, reference="dtpf_teacher"))
    big = profile_models(args.models, size=(480, 640), repeats=args.repeats, threads=args.threads,
                         memory=not args.no_memory, progress=log)
    print("\n### 480x640\n")
    print(format_table(big, reference="dtpf_teacher"))
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")

    t_small = {r.model: r for r in small}
    t_big = {r.model: r for r in big}
    checks = []
    if "dtpf_teacher" in t_big and "dtpf_student" in t_big:
        T, S = t_big["dtpf_teacher"], t_big["dtpf_student"]
        checks += [
            ("params student/teacher <= 0.11", S.params_m / T.params_m, 0.11),
            (f"latency student/teacher <= 0.20 at {args.small}x{args.small}",
             t_small["dtpf_student"].latency_s / t_small["dtpf_teacher"].latency_s, 0.20),
            ("latency student/teacher <= 0.20 at 480x640", S.latency_s / T.latency_s, 0.20),
            ("CPU time student/teacher <= 0.20 at 480x640", S.cpu_s / T.cpu_s, 0.20),
            ("student latency at 480x640 <= 5 s", S.latency_s, 5.0),
        ]
    print()
    for what, value, limit in checks:
        print(f"{'PASS' if value <= limit else 'MISS'}  {what}: {value:.3f}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"threads": args.threads, "repeats": args.repeats,
                                                 "small": rows_to_dicts(small), "big": rows_to_dicts(big)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
