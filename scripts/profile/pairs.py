"""The ratio of each pair's ARI line to its plain line (CPU per call): ``pairs.py DIR...``.

Each DIR is one ``ivr bench --lines smoke-dialplan,smoke-ari`` run (scripts/profile/
pairs.sh); the ratio is (controller + Asterisk) of the ARI step over Asterisk of the
plain step, net of idle, as the bench's own ``versus plain dialplan`` line computes it.
"""

import csv
import statistics
import sys
from pathlib import Path


def pair(directory: Path) -> tuple[float, float, float, float] | None:
    if not (directory / "results.csv").is_file():
        return None
    rows = {r["line"]: r for r in csv.DictReader((directory / "results.csv").open())}
    plain, ari = rows.get("smoke-dialplan"), rows.get("smoke-ari")
    if plain is None or ari is None:
        return None
    values = (plain["asterisk_cpu_ms_per_call"], ari["controller_cpu_ms_per_call"],
              ari["asterisk_cpu_ms_per_call"])  # fmt: skip
    if not all(values):  # an empty cell: the step gave no figure
        return None
    base, ctl, ast = map(float, values)
    return base, ctl, ast, (ctl + ast) / base


def main() -> None:
    ratios, asterisk = [], []
    for name in sys.argv[1:]:
        found = pair(Path(name))
        if found is None:
            print(f"{name}: no pair (a step failed or is missing)")
            continue
        base, ctl, ast, ratio = found
        ratios.append(ratio)
        asterisk.append(ast / base)
        print(f"{name}: plain {base:.1f} ms; ARI ctl {ctl:.2f} + ast {ast:.1f} ms: {ratio:.3f}x "
              f"(Asterisk alone {ast / base:.3f}x)")  # fmt: skip
    if ratios:
        print(f"{len(ratios)} pairs: ratio median {statistics.median(ratios):.3f}x, "
              f"range {min(ratios):.3f}-{max(ratios):.3f}x; Asterisk alone median "
              f"{statistics.median(asterisk):.3f}x, range {min(asterisk):.3f}-{max(asterisk):.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
