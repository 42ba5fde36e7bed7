"""Summarise a py-spy ``--format raw`` (collapsed stacks) file as text tables.

    python -m benchmarks.flame_top results/profile.txt [N]

Prints the functions with the most *self* samples and the most *inclusive*
samples (a function counted once per stack it appears in).
"""

from __future__ import annotations

import sys
from collections import Counter


def main(path: str, top: int = 25) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            frames = [frame.split(" (")[0] + _where(frame) for frame in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    lines = [f"{total} samples", "", "self %   function"]
    lines += [f"{100 * c / total:6.1f}   {name}" for name, c in own.most_common(top)]
    lines += ["", "incl %   function"]
    lines += [f"{100 * c / total:6.1f}   {name}" for name, c in inclusive.most_common(top)]
    return "\n".join(lines)


def _where(frame: str) -> str:
    if " (" not in frame:
        return ""
    location = frame.split(" (", 1)[1].rstrip(")")
    return f" ({location.rsplit(':', 1)[0].split('site-packages/')[-1]})"


if __name__ == "__main__":
    print(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
