"""Summarise a py-spy raw (collapsed stacks) profile: the functions with the most samples,
inclusive and self, optionally only in stacks that pass through a given function.

    py-spy record --rate 200 --format raw -o .bench/profiles/drift.txt -- python ...
    python tests/benchmarks/profile_summary.py .bench/profiles/drift.txt [--under ingest]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<fn>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    short = "/".join(path.split("/")[-2:])
    return f"{m['fn']} ({short})"


def summarise(text: str, under: str | None, top: int) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_name(f) for f in stack.split(";")]
        if under is not None:
            idx = next((i for i, f in enumerate(frames) if f.startswith(under + " ")), None)
            if idx is None:
                continue
            frames = frames[idx:]
        n = int(count)
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    out = [f"{total} samples{f' under {under}' if under else ''}", "", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", type=Path)
    ap.add_argument("--under", default=None)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    print(summarise(a.profile.read_text(), a.under, a.top))


if __name__ == "__main__":
    main()
