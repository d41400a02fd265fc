"""How fast ``sparkify.generate`` writes logs, and how much memory it takes.

Generates about ``--size`` of events (1 GB by default) into a temporary
directory, prints events, bytes, seconds, MB/s, events/s, the peak resident
memory of the whole process tree (this process and its workers, sampled
every 0.1 s from /proc, so Linux only) and the settings, then removes the
output unless ``--keep`` is given. Record figures in BENCHMARKS.md with the
command that produced them.

    .venv/bin/python benchmarks/generate_throughput.py --size 1GB --shards 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from sparkify.generate import generate

_PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces; the fields after it do not.
        parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    members = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    total = 0
    for pid in members:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except OSError:
            continue
    return total


class PeakRss:
    """Samples the process tree's resident memory in a thread; keeps the peak."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(pid))
            self._stop.wait(self.interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GB", help="target size before gzip")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="default: CPUs")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--gzip", action="store_true", help="write .jsonl.gz")
    parser.add_argument("--dir", type=Path, default=None, help="where to write")
    parser.add_argument("--keep", action="store_true", help="keep the output")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sparkify-bench-", dir=args.dir))
    out = folder / ("events.jsonl.gz" if args.gzip else "events.jsonl")
    load_before = os.getloadavg()
    try:
        with PeakRss() as memory:
            began = time.perf_counter()
            summary = generate(
                out,
                size=args.size,
                days=args.days,
                seed=args.seed,
                shards=args.shards,
                workers=args.workers,
            )
            seconds = time.perf_counter() - began
        on_disk = sum(path.stat().st_size for path in summary.paths)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    load_after = os.getloadavg()

    print(f"size target    {args.size} before gzip, {args.days} days")
    print(f"users          {summary.users:,}")
    print(f"events         {summary.events:,}")
    print(f"bytes          {summary.bytes:,} ({on_disk:,} on disk)")
    print(f"seconds        {seconds:.1f}")
    print(f"MB/s           {summary.bytes / seconds / 1e6:.1f}")
    print(f"events/s       {summary.events / seconds:,.0f}")
    print(f"peak RSS tree  {memory.peak / 2**20:,.0f} MiB")
    print(f"workers        {summary.workers}")
    print(f"shards         {summary.shards}")
    print(f"gzip           {'yes' if args.gzip else 'no'}")
    print(f"load average   {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"output         {summary.path}{'' if args.keep else ' (removed)'}")


if __name__ == "__main__":
    main()
