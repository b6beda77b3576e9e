"""ClassifyDocument on a 1,000-word HTML page: pages per second, and how much of a
call the extraction (HTML to article text, then reading it) takes at p50.

    python -m benchmarks.documents [--model models/default] [--duration 10]

The page is a fixture page (head with scripts, nav, cookie banner, figure, ads,
related links, footer) whose article is replaced by 1,000 words of our corpus
under `h2` headings. Target: extraction at most 25 % of the call at p50.
"""

from __future__ import annotations

import argparse
import html
import json
import statistics
import time
from pathlib import Path
from typing import Any

import grpc

from tests.serving import start_server
from topicstance.bundle import load_bundle
from topicstance.documents import HtmlLimits, read_document
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc
from training.dataset import load_corpus

TEMPLATE = Path("tests/fixtures/documents/01-wire-kharkiv.html")
WORDS = 1000
TARGET_SHARE = 0.25


def page(data: Path) -> str:
    """The template page with its article body replaced by WORDS words of corpus text."""
    sections = [s for s in load_corpus(data).sections if s.heading and len(s.text.split()) > 40]
    body, words = [], 0
    for section in sections[::37]:
        body.append(f"<h2>{html.escape(section.heading)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in section.text.split("\n") if p.strip()]
        words += len(section.text.split())
        if words >= WORDS:
            break
    template = TEMPLATE.read_text(encoding="utf-8")
    start = template.index("<p>KHARKIV")
    end = template.index('<p class="trailer">')
    return template[:start] + "\n".join(body) + "\n" + template[end:]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def alternate(
    target: str, model: Path, text: str, duration: float
) -> tuple[list[float], list[float]]:
    """Call after call, each followed by the core's reading of the same page in this
    process: both see the same load on the machine, so their ratio holds even when
    other work shares it."""
    reader = load_bundle(model).reader
    request = pb.ClassifyDocumentRequest(text=text, format=pb.DOCUMENT_FORMAT_HTML)
    calls, extraction = [], []
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.TopicStanceServiceStub(channel)
        stub.ClassifyDocument(request, timeout=30)  # warm up
        read_document(text, "html", reader, HtmlLimits())
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            started = time.perf_counter()
            stub.ClassifyDocument(request, timeout=30)
            calls.append(time.perf_counter() - started)
            started = time.perf_counter()
            read_document(text, "html", reader, HtmlLimits())
            extraction.append(time.perf_counter() - started)
    return calls, extraction


def measure(model: Path, data: Path, duration: float) -> dict[str, Any]:
    text = page(data)
    server = start_server(model, ["--workers", "1"])
    try:
        calls, extraction = alternate(server.target, model, text, duration)
    finally:
        server.stop()
    p50_call, p50_extraction = statistics.median(calls), statistics.median(extraction)
    return {
        "page_chars": len(text),
        "article_words": WORDS,
        "calls": len(calls),
        "pages_per_s": round(len(calls) / sum(calls), 1),
        "call_p50_ms": round(p50_call * 1000, 2),
        "call_p99_ms": round(percentile(calls, 0.99) * 1000, 2),
        "extraction_p50_ms": round(p50_extraction * 1000, 2),
        "extraction_share_p50": round(p50_extraction / p50_call, 3),
        "target_share": TARGET_SHARE,
    }


def markdown(result: dict[str, Any]) -> str:
    share = result["extraction_share_p50"]
    verdict = "within" if share <= result["target_share"] else "OVER"
    return (
        f"ClassifyDocument, {result['article_words']}-word HTML page "
        f"({result['page_chars']} characters), one worker, one call at a time: "
        f"{result['pages_per_s']} pages/s, p50 {result['call_p50_ms']} ms, "
        f"p99 {result['call_p99_ms']} ms; extraction p50 {result['extraction_p50_ms']} ms = "
        f"{share:.0%} of the call ({verdict} the {result['target_share']:.0%} target)\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--data", type=Path, default=Path("training/data"))
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    result = measure(args.model, args.data, args.duration)
    print(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
