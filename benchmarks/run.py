"""`make bench`: topicstance against the in-process limit and MLServer, side by side.

    python -m benchmarks.run [--model models/default] [--duration 10] [--skip-mlserver]

Writes benchmarks/results/latest.json and latest.md and prints the ratios. Every
number comes from this one run on this one machine; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import documents, inprocess, mlserver_anchor
from tests.serving import ServerProcess, start_server
from training.dataset import load_corpus

RESULTS = Path("benchmarks/results")
LOADGEN = Path("benchmarks/loadgen.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def workload(data: Path, count: int = 2000) -> list[str]:
    """Section texts from our corpus, in its own mix of lengths (15 to 250 words)."""
    texts = [s.full_text for s in load_corpus(data).sections]
    random.Random(7).shuffle(texts)
    return texts[:count]


def by_language(data: Path, count: int = 500) -> dict[str, list[str]]:
    """Up to `count` section texts of each language of the corpus."""
    grouped: dict[str, list[str]] = {}
    for section in load_corpus(data).sections:
        grouped.setdefault(section.lang, []).append(section.full_text)
    for texts in grouped.values():
        random.Random(7).shuffle(texts)
    return {language: texts[:count] for language, texts in grouped.items()}


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def load(
    python: Path | str, target: str, mode: str, texts: Path, args: argparse.Namespace, **extra: Any
) -> dict[str, Any]:
    command = [
        str(python),
        str(LOADGEN),
        "--target",
        target,
        "--mode",
        mode,
        "--texts",
        str(texts),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
    ]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    rate, errors = result["sections_per_s"], sum(result["errors"].values())
    print(
        f"bench: {mode:<16} c={result['concurrency']:<3} {rate:8.0f} sections/s  "
        f"p99 {result['p99_ms']:7.1f} ms  errors {errors}",
        file=sys.stderr,
    )
    return result


def bench_ours(
    model: Path, texts: Path, args: argparse.Namespace, extra_args: list[str]
) -> dict[str, Any]:
    started = time.monotonic()
    server: ServerProcess = start_server(
        model, ["--workers", str(os.cpu_count() or 1), *extra_args]
    )
    ready_s = time.monotonic() - started
    runs = []
    try:
        for concurrency in args.single_concurrency:
            runs.append(
                load(sys.executable, server.target, "single", texts, args, concurrency=concurrency)
            )
        if not extra_args:
            runs.append(
                load(
                    sys.executable,
                    server.target,
                    "batch",
                    texts,
                    args,
                    concurrency=8,
                    batch_size=64,
                )
            )
            runs.append(load(sys.executable, server.target, "stream", texts, args, concurrency=8))
        workers = {pid: rss_mb(pid) for pid in children(server.process.pid)}
    finally:
        exit_code = server.stop()
    return {
        "runs": runs,
        "start_to_serving_s": ready_s,
        "worker_rss_mb": workers,
        "exit_code": exit_code,
    }


def bench_mlserver(model: Path, texts: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    python = mlserver_anchor.ensure_venv()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = mlserver_anchor.export_topic_pipeline(model, Path(tmp))
        for config in mlserver_anchor.CONFIGS:
            grpc_port, http_port = free_port(), free_port()
            with mlserver_anchor.serving(root, config, grpc_port, http_port) as process:
                target = f"127.0.0.1:{grpc_port}"
                single = load(python, target, "mlserver-single", texts, args, concurrency=32)
                batch = load(
                    python, target, "mlserver-batch", texts, args, concurrency=8, batch_size=64
                )
                rss = rss_mb(process.pid) + sum(rss_mb(pid) for pid in children(process.pid))
            results.append({"config": config.name, "single": single, "batch": batch, "rss_mb": rss})
    return results


def find(runs: list[dict[str, Any]], mode: str, concurrency: int | None = None) -> dict[str, Any]:
    return next(
        r
        for r in runs
        if r["mode"] == mode and (concurrency is None or r["concurrency"] == concurrency)
    )


def summarize(report: dict[str, Any]) -> dict[str, float]:
    ours = report["ours"]["runs"]
    single = find(ours, "single", 32)
    limit = report["in_process"]["batch64_all_cores"]
    ratios = {
        "batch64_vs_in_process": find(ours, "batch")["sections_per_s"] / limit,
        "stream_vs_in_process": find(ours, "stream")["sections_per_s"] / limit,
    }
    if report.get("mlserver"):
        best = max(report["mlserver"], key=lambda r: r["single"]["sections_per_s"])
        ratios["single_c32_vs_mlserver_best"] = (
            single["sections_per_s"] / best["single"]["sections_per_s"]
        )
        ratios["p99_single_c32_vs_mlserver_best"] = single["p99_ms"] / best["single"]["p99_ms"]
        report["mlserver_best"] = best["config"]
        best_batch = max(r["batch"]["sections_per_s"] for r in report["mlserver"])
        ratios["batch64_vs_mlserver_best_batch"] = (
            find(ours, "batch")["sections_per_s"] / best_batch
        )
    languages = report["in_process"].get("by_language", {})
    for code, rates in languages.items():
        if code != "en" and "en" in languages:
            english = languages["en"]["sections_per_s"]
            ratios[f"in_process_{code}_vs_en_per_section"] = rates["sections_per_s"] / english
    if report.get("micro_batching_off"):
        off = find(report["micro_batching_off"]["runs"], "single", 32)
        ratios["micro_batching_on_vs_off"] = single["sections_per_s"] / off["sections_per_s"]
    return ratios


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Run {report['when']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}; "
        f"{report['texts']} corpus sections (median {report['median_words']} words), "
        f"{report['duration_s']:.0f} s per run after {report['warmup_s']:.0f} s of warm-up.",
        "",
        "| server | call | concurrency | sections/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(server: str, r: dict[str, Any]) -> str:
        call = r["mode"] + (f" ×{r['batch_size']}" if r["batch_size"] > 1 else "")
        timing = " | ".join(f"{r[key]:.1f}" for key in ("p50_ms", "p90_ms", "p99_ms"))
        errors = sum(r["errors"].values())
        rate = f"{r['sections_per_s']:.0f}"
        return f"| {server} | {call} | {r['concurrency']} | {rate} | {timing} | {errors} |"

    for r in report["ours"]["runs"]:
        lines.append(row("topicstance (topics + stances)", r))
    if report.get("micro_batching_off"):
        for r in report["micro_batching_off"]["runs"]:
            lines.append(row("topicstance, micro-batching off", r))
    for anchor in report.get("mlserver", []):
        lines.append(row(f"MLServer 1.7.1, {anchor['config']} (topics only)", anchor["single"]))
        lines.append(row(f"MLServer 1.7.1, {anchor['config']} (topics only)", anchor["batch"]))
    limits = report["in_process"]
    lines += [
        "",
        "| in-process limit (no gRPC) | sections/s |",
        "|---|---|",
        f"| one text per call, 1 process | {limits['single_1proc']:.0f} |",
        f"| batches of 64, 1 process | {limits['batch64_1proc']:.0f} |",
        f"| one text per call, {limits['cores']} processes | {limits['single_all_cores']:.0f} |",
        f"| batches of 64, {limits['cores']} processes | {limits['batch64_all_cores']:.0f} |",
        "",
        "| language (in process, batches of 64, 1 process) | sections/s | words/s |",
        "|---|---|---|",
        *[
            f"| {code} | {r['sections_per_s']:.0f} | {r['words_per_s']:.0f} |"
            for code, r in limits["by_language"].items()
        ],
        "",
        "| ratio | value |",
        "|---|---|",
        *[f"| {name} | {value:.2f} |" for name, value in report["ratios"].items()],
        "",
        f"Start to SERVING: {report['ours']['start_to_serving_s']:.2f} s. Worker RSS: "
        + ", ".join(f"{v:.0f} MB" for v in report["ours"]["worker_rss_mb"].values())
        + (
            f". MLServer's best single-text configuration: {report['mlserver_best']}."
            if report.get("mlserver_best")
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--data", type=Path, default=Path("training/data"))
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--single-concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--skip-mlserver", action="store_true")
    args = parser.parse_args()
    texts = workload(args.data)
    words = sorted(len(t.split()) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        report: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            "texts": len(texts),
            "median_words": words[len(words) // 2],
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        }
        print("bench: topicstance", file=sys.stderr)
        report["ours"] = bench_ours(args.model, texts_file, args, [])
        print("bench: topicstance with micro-batching off", file=sys.stderr)
        args_off = argparse.Namespace(**{**vars(args), "single_concurrency": [32]})
        report["micro_batching_off"] = bench_ours(
            args.model, texts_file, args_off, ["--max-batch-sections", "1"]
        )
        print("bench: ClassifyDocument on a 1,000-word HTML page", file=sys.stderr)
        report["documents"] = documents.measure(args.model, args.data, args.duration)
        print("bench: in-process limit", file=sys.stderr)
        report["in_process"] = inprocess.measure(
            args.model, texts, args.duration / 2, by_language(args.data)
        )
        if not args.skip_mlserver:
            print("bench: MLServer", file=sys.stderr)
            report["mlserver"] = bench_mlserver(args.model, texts_file, args)
    report["ratios"] = summarize(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report) + "\n" + documents.markdown(report["documents"])
    (RESULTS / "latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
