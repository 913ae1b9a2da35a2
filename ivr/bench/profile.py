"""py-spy on the controller during one bench step: a flame graph and the shares.

``profiling(pid, out, seconds)`` wraps one step of ``ivr bench --profile``:
it starts ``py-spy record --pid <pid> --subprocesses --format raw`` (the
controller and its voice workers), stops it when the block ends or after
``seconds``, and writes next to each other:

- ``out`` (``flame-<line>-<n>.svg``): the flame graph, an SVG any browser opens
  (hover a frame for its samples and share);
- ``out`` with ``.collapsed.txt``: the collapsed stacks (``a;b;c 12`` per
  line, py-spy's ``raw`` format, Brendan Gregg's ``stackcollapse`` format), so
  shares can be computed again: :func:`read_collapsed`, :func:`top_frames`,
  :func:`by_area`.

py-spy (PyPI, the ``bench`` extra) reads the target's memory with
``process_vm_readv``: it needs root or ``CAP_SYS_PTRACE`` (a container may need
``--cap-add SYS_PTRACE``); without it :class:`ProfilerError` says so.

Why the SVG is drawn here: py-spy writes either the flame graph or the raw
stacks from one run, not both, and two samplers on one process double the
pause per sample. The renderers of collapsed stacks (``flamegraph.pl``,
inferno) are Perl and Rust tools outside our registries; drawing boxes from a
stack tree is 50 lines.
"""

from __future__ import annotations

import functools
import html
import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Profile",
    "ProfilerError",
    "Stacks",
    "by_area",
    "by_process",
    "merged",
    "profiling",
    "py_spy",
    "read_collapsed",
    "render_svg",
    "top_frames",
    "top_self",
    "under",
]

DEFAULT_RATE = 200  # samples per second
STOP_GRACE_S = 20.0  # py-spy writes its output after SIGINT; give it this long

Stacks = dict[tuple[str, ...], int]  # root-first frames -> samples


class ProfilerError(RuntimeError):
    """py-spy is missing, cannot attach (permissions), or wrote nothing."""


@dataclass(frozen=True)
class Profile:
    """What one :func:`profiling` block left: ``svg`` and ``collapsed`` paths."""

    svg: Path
    collapsed: Path


def py_spy() -> str:
    """The py-spy executable: beside this Python (a venv's bin), else on PATH.
    :class:`ProfilerError` when there is none (``pip install -e '.[bench]'``)."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise ProfilerError("py-spy not found: pip install -e '.[bench]'")
    return found


@contextmanager
def profiling(
    pid: int,
    out: Path,
    seconds: float,
    *,
    rate: int = DEFAULT_RATE,
    subprocesses: bool = True,
) -> Iterator[Profile]:
    """Sample process ``pid`` (and its children when ``subprocesses``) for at
    most ``seconds`` while the block runs; on leaving, write the SVG to ``out``
    and the collapsed stacks to ``out.with_suffix('.collapsed.txt')``.

    ``rate``: samples per second (py-spy pauses the process for each, a few
    tens of µs). The block may end before ``seconds`` (py-spy is stopped with
    SIGINT and writes what it has) or after (the samples end at ``seconds``).
    Raises :class:`ProfilerError` when py-spy cannot start or attach (it needs
    ptrace rights: root or ``CAP_SYS_PTRACE``) or wrote no samples; the
    block's own exception, if any, wins.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    collapsed = out.with_suffix(".collapsed.txt")
    log = out.with_suffix(".py-spy.log")
    cmd = [py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
    cmd += ["--output", str(collapsed), "--duration", str(max(1, round(seconds)))]
    if subprocesses:
        cmd.append("--subprocesses")
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    profile = Profile(svg=out, collapsed=collapsed)
    failed = False
    try:
        yield profile
    except BaseException:
        failed = True
        raise
    finally:
        _stop(proc, seconds)
        if not failed:
            _finish(proc, profile, log, pid)


def _stop(proc: subprocess.Popen[bytes], seconds: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _finish(proc: subprocess.Popen[bytes], profile: Profile, log: Path, pid: int) -> None:
    said = log.read_text(errors="replace").strip()
    if not profile.collapsed.is_file() or profile.collapsed.stat().st_size == 0:
        hint = " (py-spy needs root or CAP_SYS_PTRACE)" if "ermission" in said else ""
        raise ProfilerError(
            f"py-spy wrote no samples of pid {pid} (exit {proc.returncode}){hint}: {said[-400:]}"
        )
    stacks = read_collapsed(profile.collapsed)
    render_svg(stacks, profile.svg, title=f"pid {pid}: {sum(stacks.values())} samples")


# -- reading the stacks ------------------------------------------------------

_LINE_NO = re.compile(r":\d+\)$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]+):(?P<line>\d+)\)$")
# A source line that blocks its thread: a queue or lock wait, a selector poll, a sleep.
_WAITING_CALL = re.compile(r"\.(get|select|acquire|wait|poll|join)\(|\bsleep\(")


@functools.lru_cache(maxsize=4096)
def is_waiting(frame: str) -> bool:
    """True when the leaf ``frame`` (``name (file:line)``, as py-spy writes it)
    is a thread blocked rather than working: its source line calls a queue or
    lock ``get``/``acquire``/``wait``, a selector's ``select``/``poll``, a
    ``join`` or a ``sleep`` (looked up in this interpreter's ``sys.path``, so
    analyse where the profiled code is installed).

    Why: py-spy leaves out idle threads by the thread's OS state, but it counts
    some blocked waits as running (measured here: aiosqlite's worker thread in
    ``tx.get()`` was 27 % of "active" samples, the loop's ``epoll`` wait 7 %);
    those are dropped before shares are computed."""
    m = _FRAME.match(frame)
    if m is None:
        return False
    line = _source_line(m["file"], int(m["line"]))
    return bool(line and _WAITING_CALL.search(line))


def _source_line(file: str, line: int) -> str:
    for base in ("", *sys.path):
        candidate = Path(base, file) if base else Path(file)
        if candidate.is_absolute() or base:
            text = linecache.getline(str(candidate), line)
            if text:
                return text
    return ""


def frame_name(frame: str) -> str:
    """``_run_once (asyncio/base_events.py:1922)`` -> ``_run_once (asyncio/base_events.py)``:
    one name per function, whatever line the sample was on."""
    return _LINE_NO.sub(")", frame)


def read_collapsed(path: Path, *, working: bool = True) -> Stacks:
    """Collapsed stacks (``root;...;leaf <count>`` per line) -> {frames: samples};
    line numbers are dropped (:func:`frame_name`) and equal stacks summed.
    ``working``: leave out the samples of blocked threads (:func:`is_waiting`)."""
    stacks: Stacks = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if working and is_waiting(frames[-1]):
            continue
        key = tuple(frame_name(f) for f in frames)
        stacks[key] = stacks.get(key, 0) + int(count)
    return stacks


_PROCESS = re.compile(r"^process (\d+):")


def by_process(stacks: Mapping[tuple[str, ...], int]) -> dict[int | None, Stacks]:
    """Split ``--subprocesses`` stacks by process: py-spy starts each stack with
    one ``process <pid>:"<command line>"`` frame per level of the process tree
    (the controller, then its voice worker); the innermost names the sampled
    process. The ``process`` frames are removed; stacks without any (a
    recording of one process) come under ``None``."""
    out: dict[int | None, Stacks] = {}
    for stack, count in stacks.items():
        pid: int | None = None
        i = 0
        while i < len(stack) and (m := _PROCESS.match(stack[i])):
            pid = int(m.group(1))
            i += 1
        rest = stack[i:]
        if not rest:  # a sample of the process with no Python frame
            continue
        bucket = out.setdefault(pid, {})
        bucket[rest] = bucket.get(rest, 0) + count
    return out


def merged(per_process: Mapping[int | None, Mapping[tuple[str, ...], int]]) -> Stacks:
    """The stacks of several processes (:func:`by_process`) as one: equal stacks summed."""
    out: Stacks = {}
    for stacks in per_process.values():
        for stack, count in stacks.items():
            out[stack] = out.get(stack, 0) + count
    return out


def top_frames(
    stacks: Mapping[tuple[str, ...], int], n: int = 20
) -> list[tuple[str, float, float]]:
    """The ``n`` functions with the largest cumulative share: ``(frame, self,
    cumulative)``, shares of all samples in [0, 1]. Self: samples where it is
    the leaf; cumulative: samples where it is anywhere on the stack (once per
    stack, so recursion does not count twice)."""
    total = sum(stacks.values()) or 1
    own: dict[str, int] = {}
    cum: dict[str, int] = {}
    for stack, count in stacks.items():
        own[stack[-1]] = own.get(stack[-1], 0) + count
        for frame in set(stack):
            cum[frame] = cum.get(frame, 0) + count
    ranked = sorted(cum, key=lambda f: (-cum[f], f))[:n]
    return [(f, own.get(f, 0) / total, cum[f] / total) for f in ranked]


def top_self(stacks: Mapping[tuple[str, ...], int], n: int = 20) -> list[tuple[str, float]]:
    """The ``n`` leaf functions with the largest self share (of all samples)."""
    total = sum(stacks.values()) or 1
    own: dict[str, int] = {}
    for stack, count in stacks.items():
        own[stack[-1]] = own.get(stack[-1], 0) + count
    return [(f, c / total) for f, c in sorted(own.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# Where a leaf frame's file lives -> the area it is charged to (first match wins).
AREAS: tuple[tuple[str, str], ...] = (
    ("sqlalchemy/", "sqlalchemy"),
    ("aiosqlite/", "aiosqlite"),
    ("sqlite3/", "sqlite3"),
    ("asyncpg/", "asyncpg"),
    ("panoramisk/", "panoramisk (AMI)"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "asyncio"),
    ("prometheus_client/", "prometheus"),
    ("ivr/ari/", "ivr.ari"),
    ("ivr/store/", "ivr.store"),
    ("ivr/flow/", "ivr.flow"),
    ("ivr/", "ivr (other)"),
)


def area_of(frame: str) -> str:
    """The area of one frame by its file (``AREAS``), else ``other``."""
    for needle, area in AREAS:
        if needle in frame:
            return area
    return "other"


def by_area(stacks: Mapping[tuple[str, ...], int]) -> list[tuple[str, float]]:
    """Self time by area (the leaf frame's library or package), shares of all
    samples, largest first: where the CPU is spent, whoever called it."""
    total = sum(stacks.values()) or 1
    areas: dict[str, int] = {}
    for stack, count in stacks.items():
        area = area_of(stack[-1])
        areas[area] = areas.get(area, 0) + count
    return [(a, c / total) for a, c in sorted(areas.items(), key=lambda kv: (-kv[1], kv[0]))]


def under(stacks: Mapping[tuple[str, ...], int], needle: str) -> float:
    """Share of samples whose stack has a frame containing ``needle`` (cumulative)."""
    total = sum(stacks.values()) or 1
    return sum(c for s, c in stacks.items() if any(needle in f for f in s)) / total


# -- the flame graph ---------------------------------------------------------

WIDTH = 1200
ROW = 16
MIN_PX = 0.3  # frames narrower than this are not drawn


@dataclass
class _Node:
    count: int
    children: dict[str, _Node]


def _tree(stacks: Iterable[tuple[tuple[str, ...], int]]) -> _Node:
    root = _Node(0, {})
    for stack, count in stacks:
        root.count += count
        node = root
        for frame in stack:
            node = node.children.setdefault(frame, _Node(0, {}))
            node.count += count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def render_svg(stacks: Mapping[tuple[str, ...], int], path: Path, *, title: str = "") -> None:
    """Draw ``stacks`` as a flame graph (root at the bottom, width = samples) to
    ``path``: one ``<rect>`` per frame with a ``<title>`` giving its samples and
    share, the name inside when it fits. Colours are by area (:func:`area_of`)."""
    root = _tree(sorted(stacks.items()))
    total = root.count or 1
    height = (_depth(root) + 2) * ROW
    scale = WIDTH / total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">',
        f'<text x="4" y="12">{html.escape(title)}</text>',
    ]

    def draw(node: _Node, name: str, x: float, depth: int) -> None:
        w = node.count * scale
        if w < MIN_PX:
            return
        y = height - (depth + 1) * ROW
        share = 100 * node.count / total
        hue = (sum(map(ord, area_of(name))) * 37) % 360
        label = html.escape(name)
        parts.append(
            f"<g><title>{label} ({node.count} samples, {share:.2f} %)</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{ROW - 1}" '
            f'fill="hsl({hue},70%,65%)"/>'
        )
        chars = int(w / 7)
        if chars >= 4:
            text = name if len(name) <= chars else name[: chars - 2] + ".."
            parts.append(f'<text x="{x + 2:.2f}" y="{y + ROW - 4}">{html.escape(text)}</text>')
        parts.append("</g>")
        for child_name, child in node.children.items():
            draw(child, child_name, x, depth + 1)
            x += child.count * scale

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * _depth(root) + 100))
    x = 0.0
    for name, child in root.children.items():
        draw(child, name, x, 0)
        x += child.count * scale
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
