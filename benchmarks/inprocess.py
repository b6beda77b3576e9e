"""The in-process limit: the model called directly, no gRPC, in one or more processes.

python -m benchmarks.inprocess --model models/default --texts texts.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from topicstance.bundle import ModelBundle, load_bundle


def rate(bundle: ModelBundle, texts: list[str], batch_size: int, seconds: float) -> float:
    """Sections per second of back-to-back predict calls for `seconds`."""
    done, index = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = [texts[(index + i) % len(texts)] for i in range(batch_size)]
        bundle.predict(batch)
        done += batch_size
        index += batch_size
    return done / (time.perf_counter() - started)


def _child(
    bundle: ModelBundle, texts: list[str], batch_size: int, seconds: float, out: Any
) -> None:
    out.put(rate(bundle, texts, batch_size, seconds))


def parallel_rate(
    bundle: ModelBundle, texts: list[str], batch_size: int, seconds: float, processes: int
) -> float:
    """Total sections per second of `processes` forked copies running at once."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [
        context.Process(
            target=_child, args=(bundle, texts[i::processes] or texts, batch_size, seconds, results)
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    total = sum(results.get() for _ in children)
    for child in children:
        child.join()
    return float(total)


def language_rates(
    bundle: ModelBundle, by_language: dict[str, list[str]], seconds: float
) -> dict[str, dict[str, float]]:
    """Per language of the corpus: sections/s and words/s in batches of 64, one process
    (the words say whether a slower language is only a longer one)."""
    rates = {}
    for language, texts in by_language.items():
        per_second = rate(bundle, texts, 64, seconds)
        words = sum(len(t.split()) for t in texts) / len(texts)
        rates[language] = {"sections_per_s": per_second, "words_per_s": per_second * words}
    return rates


def measure(
    model: Path, texts: list[str], seconds: float, by_language: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    bundle = load_bundle(model)
    bundle.predict(texts[:64])
    cores = os.cpu_count() or 1
    return {
        "single_1proc": rate(bundle, texts, 1, seconds),
        "batch64_1proc": rate(bundle, texts, 64, seconds),
        "single_all_cores": parallel_rate(bundle, texts, 1, seconds, cores),
        "batch64_all_cores": parallel_rate(bundle, texts, 64, seconds, cores),
        "cores": cores,
        "by_language": language_rates(bundle, by_language or {}, seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.model, json.loads(args.texts.read_text()), args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
