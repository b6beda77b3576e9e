"""A gRPC load generator: several client processes, each running many async callers.

    python benchmarks/loadgen.py --target HOST:PORT --mode single --concurrency 32 \
        --duration 10 --warmup 2 --texts texts.json [--batch-size 64] [--processes 2]

Prints one JSON object: calls and sections per second, latency percentiles (ms),
and error counts by status code. Runs in this project's venv (modes `single`,
`batch`, `stream`) and in the MLServer venv (modes `mlserver-single`,
`mlserver-batch`), so it imports each side's stubs only when that side is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

Call = Callable[[list[str]], Awaitable[int]]
CONNECTIONS = 8


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _our_calls(channel: grpc.aio.Channel, mode: str) -> Call:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from topicstance.v1 import topicstance_pb2 as pb
    from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

    stub = pb_grpc.TopicStanceServiceStub(channel)

    async def single(texts: list[str]) -> int:
        await stub.ClassifyText(pb.ClassifyTextRequest(text=texts[0]), timeout=30)
        return 1

    async def batch(texts: list[str]) -> int:
        response = await stub.BatchClassifyTexts(
            pb.BatchClassifyTextsRequest(texts=texts), timeout=30
        )
        return len(response.results)

    return single if mode == "single" else batch


def _mlserver_call(channel: grpc.aio.Channel, model: str) -> Call:
    from mlserver.grpc import dataplane_pb2 as v2
    from mlserver.grpc import dataplane_pb2_grpc as v2_grpc

    stub = v2_grpc.GRPCInferenceServiceStub(channel)

    async def infer(texts: list[str]) -> int:
        request = v2.ModelInferRequest(
            model_name=model,
            parameters={"content_type": v2.InferParameter(string_param="str")},
            inputs=[
                v2.ModelInferRequest.InferInputTensor(
                    name="text",
                    datatype="BYTES",
                    shape=[len(texts)],
                    contents=v2.InferTensorContents(bytes_contents=[t.encode() for t in texts]),
                )
            ],
            outputs=[v2.ModelInferRequest.InferRequestedOutputTensor(name="predict_proba")],
        )
        response = await stub.ModelInfer(request, timeout=30)
        return int(response.outputs[0].shape[0])

    return infer


@dataclass
class Window:
    """The texts to send, when measuring starts and stops, and what was measured."""

    texts: list[str]
    warm: float
    stop: float
    calls: int = 0
    sections: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def done(self, started: float, sections: int) -> None:
        if started >= self.warm:
            self.latencies.append((time.monotonic() - started) * 1000)
            self.sections += sections
            self.calls += 1

    def failed(self, started: float, code: grpc.StatusCode) -> None:
        if started >= self.warm:
            self.errors[code.name] = self.errors.get(code.name, 0) + 1


async def _stream_worker(channel: grpc.aio.Channel, window: Window, in_flight_limit: int) -> None:
    """One stream with up to `in_flight_limit` requests in flight; latency per message."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from topicstance.v1 import topicstance_pb2 as pb
    from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

    stub = pb_grpc.TopicStanceServiceStub(channel)
    call = stub.StreamClassifyTexts()
    sent: dict[str, float] = {}
    in_flight = asyncio.Semaphore(in_flight_limit)
    counter = 0

    async def send() -> None:
        nonlocal counter
        while time.monotonic() < window.stop:
            await in_flight.acquire()
            counter += 1
            request_id = str(counter)
            sent[request_id] = time.monotonic()
            await call.write(
                pb.StreamClassifyTextsRequest(
                    request_id=request_id, text=random.choice(window.texts)
                )
            )
        await call.done_writing()

    writer = asyncio.create_task(send())
    try:
        async for response in call:
            window.done(sent.pop(response.request_id), 1)
            in_flight.release()
    except grpc.aio.AioRpcError as error:
        window.failed(window.warm, error.code())
    await writer


async def _worker(call: Call, batch_size: int, window: Window) -> None:
    while time.monotonic() < window.stop:
        texts = window.texts
        chosen = random.sample(texts, batch_size) if batch_size > 1 else [random.choice(texts)]
        started = time.monotonic()
        try:
            window.done(started, await call(chosen))
        except grpc.aio.AioRpcError as error:
            window.failed(started, error.code())


async def _client(args: argparse.Namespace, share: int, seed: int) -> dict[str, Any]:
    random.seed(seed)
    # Several connections per client process, as real clients keep: a server whose
    # workers share the port (SO_REUSEPORT) is balanced per connection.
    channels = [
        grpc.aio.insecure_channel(
            args.target,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024), ("grpc.channel_id", i)],
        )
        for i in range(min(share, CONNECTIONS))
    ]
    for channel in channels:
        await channel.channel_ready()
    warm = time.monotonic() + args.warmup
    window = Window(json.loads(Path(args.texts).read_text()), warm, warm + args.duration)
    if args.mode == "stream":
        workers = [
            _stream_worker(channels[i % len(channels)], window, args.stream_window)
            for i in range(share)
        ]
    else:
        batch = args.batch_size if args.mode.endswith("batch") else 1
        if args.mode.startswith("mlserver"):
            calls = [_mlserver_call(channel, args.model) for channel in channels]
        else:
            calls = [_our_calls(channel, args.mode) for channel in channels]
        workers = [_worker(calls[i % len(calls)], batch, window) for i in range(share)]
    await asyncio.gather(*workers)
    for channel in channels:
        await channel.close()
    return {
        "latencies": window.latencies,
        "sections": window.sections,
        "calls": window.calls,
        "errors": window.errors,
    }


def _process(args: argparse.Namespace, share: int, seed: int, results: Any) -> None:
    results.put(asyncio.run(_client(args, share, seed)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Spread the concurrency over the client processes and merge their records."""
    processes = max(1, min(args.processes, args.concurrency))
    shares = [
        args.concurrency // processes + (i < args.concurrency % processes) for i in range(processes)
    ]
    results: Any = multiprocessing.get_context("spawn").Queue()
    workers = [
        multiprocessing.get_context("spawn").Process(
            target=_process, args=(args, share, index, results)
        )
        for index, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    records = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [value for record in records for value in record["latencies"]]
    errors: dict[str, int] = {}
    for record in records:
        for code, count in record["errors"].items():
            errors[code] = errors.get(code, 0) + count
    calls = sum(r["calls"] for r in records)
    return {
        "mode": args.mode,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size if args.mode.endswith("batch") else 1,
        "duration_s": args.duration,
        "calls": calls,
        "calls_per_s": calls / args.duration,
        "sections_per_s": sum(r["sections"] for r in records) / args.duration,
        "p50_ms": percentile(latencies, 0.50),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", required=True)
    parser.add_argument(
        "--mode",
        required=True,
        choices=["single", "batch", "stream", "mlserver-single", "mlserver-batch"],
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--stream-window", type=int, default=8, help="requests in flight per stream"
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--texts", required=True, help="JSON list of texts to send")
    parser.add_argument("--model", default="topics", help="MLServer model name")
    print(json.dumps(run(parser.parse_args())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
