"""Summarise a py-spy raw profile (`--format raw`): each function's share of the samples."""

import argparse
import re
from collections import Counter

_LINE = re.compile(r":\d+\)")


def summarise(path: str, top: int = 40) -> str:
    total, inclusive, leaf = 0, Counter(), Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
            for frame in set(frames):
                inclusive[frame] += n
            leaf[frames[-1]] += n
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples", "", "inclusive (the function and what it calls):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self (the function's own code):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in leaf.most_common(top // 2)]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("path", help="a py-spy raw profile, e.g. artifacts/profile-burst-1p-0.txt")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    print(summarise(args.path, args.top))


if __name__ == "__main__":
    main()
