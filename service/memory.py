"""Refuse to start with more workers than the memory limit holds, instead of being
OOM-killed under load later.

Each worker is a fork of the process that loaded the model and grows to about that
process's size plus what its batches need (`BATCH_HEADROOM_BYTES`, measured in the
soak); the supervisor stays at its own size. The limit is the cgroup's (a
container's `--memory`, a pod's `resources.limits.memory`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a huge number
MIB = 1024 * 1024
# What a worker adds to the loaded model under load: gRPC buffers, the largest
# batches' arrays (kept by the allocator), the asyncio server. Measured at about
# 32 MiB per worker in the 5-minute soak (docs/operations.md); 1.5 times that, for margin.
BATCH_HEADROOM_BYTES = 48 * MIB


@dataclass(frozen=True)
class Budget:
    """What the workers are expected to need against what the cgroup allows."""

    limit: int
    process: int  # the supervisor, model loaded
    workers: int

    @property
    def per_worker(self) -> int:
        return self.process + BATCH_HEADROOM_BYTES

    @property
    def needed(self) -> int:
        """One worker serves in the process itself; more are forked beside it."""
        if self.workers == 1:
            return self.per_worker
        return self.process + self.workers * self.per_worker

    def fits(self) -> int:
        """How many workers the limit holds: 0, 1 (served in the process itself), or
        as many forks as fit beside the supervisor."""
        if self.per_worker > self.limit:
            return 0
        return max(1, (self.limit - self.process) // self.per_worker)

    def problem(self) -> str | None:
        """None when the workers fit; else what to change, in one sentence."""
        if self.needed <= self.limit:
            return None
        fits = self.fits()
        change = (
            f"set --workers (TOPICSTANCE_WORKERS) to at most {fits} or raise the limit"
            if fits
            else f"raise the limit to at least {self.per_worker // MIB + 1} MiB"
        )
        return (
            f"the memory limit ({self.limit // MIB} MiB) is too low for {self.workers} workers: "
            f"each needs about {self.per_worker // MIB} MiB with this model "
            f"({self.process // MIB} MiB once loaded, plus {BATCH_HEADROOM_BYTES // MIB} MiB "
            f"for batches), {self.needed // MIB} MiB in all with the supervisor; {change}"
        )


def cgroup_limit(
    root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")
) -> int | None:
    """The tightest memory limit on this process's cgroup and its parents (v1 or v2)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    candidates: list[Path] = []
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            candidates += _up(root, path.lstrip("/"), "memory.max")
        elif "memory" in controllers.split(","):
            candidates += _up(root / "memory", path.lstrip("/"), "memory.limit_in_bytes")
    limits = [value for value in map(_read_limit, candidates) if value is not None]
    return min(limits) if limits else None


def _up(base: Path, path: str, name: str) -> list[Path]:
    """`name` in the cgroup at `path` and in each of its parents, up to `base`."""
    parts = [p for p in path.split("/") if p]
    return [base.joinpath(*parts[:depth], name) for depth in range(len(parts), -1, -1)]


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit() or int(text) >= UNLIMITED:
        return None  # "max" (v2) or the v1 stand-in for no limit
    return int(text)


def resident_bytes(status: Path = Path("/proc/self/status")) -> int:
    """This process's resident set size (VmRSS)."""
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
