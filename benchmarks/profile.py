"""Profile the prediction hot path with pyinstrument: where does a batch spend its time?

    python -m benchmarks.profile [--model models/default] [--batch 64] [--seconds 5]

Prints the call tree (time share per function) and writes
benchmarks/results/profile.txt.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pyinstrument import Profiler

from benchmarks.run import RESULTS, workload
from topicstance.bundle import load_bundle


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--data", type=Path, default=Path("training/data"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    texts = workload(args.data)
    bundle.predict(texts[: args.batch])
    profiler = Profiler(interval=0.0005)
    profiler.start()
    started, index = time.perf_counter(), 0
    while time.perf_counter() - started < args.seconds:
        bundle.predict([texts[(index + i) % len(texts)] for i in range(args.batch)])
        index += args.batch
    profiler.stop()
    rate = index / (time.perf_counter() - started)
    text = profiler.output_text(unicode=True, show_all=False)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile.txt").write_text(f"batch {args.batch}: {rate:.0f} sections/s\n\n{text}")
    print(text)
    print(f"batch {args.batch}: {rate:.0f} sections/s (profiler running)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
