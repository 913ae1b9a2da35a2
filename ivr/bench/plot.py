"""``bench.png``: four panels a person can read at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLORS = {"smoke-dialplan": "tab:gray", "smoke-ari": "tab:blue", "citas": "tab:orange"}


TITLE_WIDTH = 170  # characters a line of the title holds at figsize 13 in and 9 pt


def wrapped(headline: str, width: int = TITLE_WIDTH) -> str:
    """``headline``'s lines wrapped at ``width`` characters, at a space, so that a
    long line of ratios is not cut at the figure's edges.

    >>> wrapped("a 1; b 2; c 3", width=9).splitlines()
    ['a 1; b 2;', 'c 3']
    """
    import textwrap

    out: list[str] = []
    for line in headline.splitlines():
        out.extend(textwrap.wrap(line, width=width, break_on_hyphens=False) or [""])
    return "\n".join(out)


def plot(rows: Sequence[dict[str, Any]], headline: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = list(dict.fromkeys(str(r["line"]) for r in rows))
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(wrapped(headline), fontsize=9)
    ax_done, ax_lat, ax_cpu, ax_rss = axes[0][0], axes[0][1], axes[1][0], axes[1][1]

    for line in lines:
        mine = sorted((r for r in rows if r["line"] == line), key=lambda r: r["concurrency"])
        xs = [int(r["concurrency"]) for r in mine]
        color = COLORS.get(line, None)
        done = [100.0 * (1 - float(r["failure_ratio"])) for r in mine]
        ax_done.plot(xs, done, "o-", color=color, label=line)

        def series(key: str, rows_: list[dict[str, Any]] = mine) -> tuple[list[int], list[float]]:
            pts = [(int(r["concurrency"]), float(r[key])) for r in rows_ if r.get(key) is not None]
            return [p[0] for p in pts], [p[1] for p in pts]

        for key, style, label in (
            ("reaction_p99_ms", "o-", "reaction p99"),
            ("from_asterisk_p99_ms", "s--", "from Asterisk p99"),
            ("response_p99_ms", "x:", "response p99"),
        ):
            x, y = series(key)
            if x:
                ax_lat.plot(x, y, style, color=color, label=f"{line} {label}")
        for key, style, label in (
            ("controller_cpu_ms_per_call", "o-", "controller"),
            ("asterisk_cpu_ms_per_call", "s--", "Asterisk"),
        ):
            x, y = series(key)
            if x and (key != "controller_cpu_ms_per_call" or line != "smoke-dialplan"):
                ax_cpu.plot(x, y, style, color=color, label=f"{line} {label}")
        for key, style, label in (
            ("controller_rss_peak_mb", "o-", "controller"),
            ("asterisk_rss_peak_mb", "s--", "Asterisk"),
        ):
            x, y = series(key)
            if x and (key != "controller_rss_peak_mb" or line != "smoke-dialplan"):
                ax_rss.plot(x, y, style, color=color, label=f"{line} {label}")

    ax_done.set_title("calls completed (%) per step")
    ax_done.axhline(95, color="red", linewidth=0.8, linestyle=":")
    ax_done.set_ylim(0, 105)
    ax_lat.set_title("controller: DTMF event in → next ARI command out (ms)")
    ax_lat.set_yscale("log")
    ax_cpu.set_title("CPU per completed call (ms)")
    ax_rss.set_title("peak RSS during the step (MB)")
    ticks = sorted({int(r["concurrency"]) for r in rows})
    for ax in (ax_done, ax_lat, ax_cpu, ax_rss):
        ax.set_xscale("log", base=2)
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel("simultaneous calls (N)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
