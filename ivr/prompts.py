"""Prompt audio, built reproducibly from ``prompts.yaml`` in the prompts
directory (``CITAS_PROMPTS_DIR``; default the shipped ``prompts/``).

Each prompt becomes three headerless 8 kHz mono files that Asterisk plays
without transcoding: ``<id>.ulaw``, ``<id>.alaw`` and ``<id>.sln`` (16-bit
signed linear). The text is synthesized with espeak-ng and converted with sox;
a voice-talent recording in ``recorded/<id>.<ext>`` replaces the
synthesized file of the same name, and the formats it lacks are converted from
it (an A-law caller must not hear the robot while a u-law caller hears the
talent). ``manifest.json`` in the output directory keys every prompt by what
produced it, so an unchanged prompt is not rebuilt.

Build from the command line::

    python -m ivr.prompts                 # into <prompts dir>/build/
    python -m ivr.prompts /tmp/p          # elsewhere
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ivr.schemas import load_checked
from ivr.settings import Settings
from ivr.yamlsrc import ConfigError

# The prompts directory's layout (ivr.settings.Settings.prompts_dir).
DEFAULT_TEXTS = Settings().prompts_file
DEFAULT_BUILD_DIR = Settings().prompts_build_dir
DEFAULT_RECORDED_DIR = Settings().recorded_dir

VOICE = "es-419"
DEFAULT_RATE = 150
SAMPLE_RATE = 8000
TOOLS = ("espeak-ng", "sox")
TOOL_TIMEOUT = 60.0
MANIFEST = "manifest.json"
LOCK = ".lock"  # builders of one directory take turns on it (build_prompts)
# Bump when the commands below change: every prompt is then rebuilt.
PIPELINE_VERSION = 1


# sox options describing each headerless format, as output or as input.
_RAW_8K_MONO = ("-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1")
_RAW_FORMATS: dict[str, tuple[str, ...]] = {
    "ulaw": (*_RAW_8K_MONO, "-e", "u-law"),
    "alaw": (*_RAW_8K_MONO, "-e", "a-law"),
    # Asterisk reads .sln in host byte order; every host we deploy on is little-endian.
    "sln": (*_RAW_8K_MONO, "-e", "signed-integer", "-b", "16", "-L"),
}
FORMATS = tuple(_RAW_FORMATS)
# espeak-ng peaks at full scale and resampling then clips: normalize synthesized
# audio to -3 dBFS peaks. Recordings keep the studio's levels.
_TTS_EFFECTS = ("gain", "-n", "-3")
# Which recording to convert the missing formats from: lossless first.
_SOURCE_PREFERENCE = ("sln", "ulaw", "alaw")


class PromptError(Exception):
    """Base of the errors raised while loading or building prompts."""


class PromptFileError(PromptError, ConfigError):
    """The prompts file is unreadable or invalid; the message names file, line and id."""


class PromptBuildError(PromptError):
    """A tool is missing or failed; the message names the prompt and the command."""


@dataclass(frozen=True)
class PromptText:
    """One prompt: ``text`` is what voice says (the audio is synthesized from it),
    ``chat`` what a chat user reads instead (None: ``text``; "marque 1" makes no
    sense in a chat), ``voice_rate`` espeak-ng's words per minute."""

    id: str
    text: str
    voice_rate: int = DEFAULT_RATE
    chat: str | None = None


@dataclass
class BuildReport:
    out_dir: Path
    synthesized: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.out_dir}: {len(self.synthesized)} synthesized, "
            f"{len(self.recorded)} from recordings, {len(self.up_to_date)} up to date"
        )


def missing_tools() -> list[str]:
    """The build tools not found on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def load_prompt_texts(path: Path) -> dict[str, PromptText]:
    """Read the prompts file, checked against ``ivr/schemas/prompts.json``.

    Raises ``PromptFileError`` (a ``ConfigError``) naming file, line and prompt id."""
    try:
        data = load_checked(path, "prompts")
    except ConfigError as exc:
        raise PromptFileError(exc.file, exc.line, exc.field, exc.problem) from None
    return {prompt_id: _prompt(prompt_id, value) for prompt_id, value in data.items()}


def build_prompts(
    texts: Mapping[str, PromptText],
    out_dir: Path = DEFAULT_BUILD_DIR,
    *,
    recorded_dir: Path | None = DEFAULT_RECORDED_DIR,
) -> BuildReport:
    """Write ``<id>.ulaw/.alaw/.sln`` for every prompt into ``out_dir``.

    Builders of one ``out_dir`` take turns (an exclusive ``flock`` on
    ``out_dir/.lock``, released when the build ends, and by the kernel if the
    process dies): two e2e workers of one checkout start their sandboxes at once,
    and both would otherwise synthesize every prompt, each writing the manifest
    over the other's. The second finds the first's build up to date.
    Raises ``PromptBuildError`` when a tool is missing or fails."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir / LOCK):
        return _build(texts, out_dir, recorded_dir)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _build(
    texts: Mapping[str, PromptText], out_dir: Path, recorded_dir: Path | None
) -> BuildReport:
    manifest_path = out_dir / MANIFEST
    old = _read_manifest(manifest_path)
    new: dict[str, str] = {}
    report = BuildReport(out_dir=out_dir)
    try:
        for prompt_id, prompt in texts.items():
            recordings = _recordings(recorded_dir, prompt_id)
            key = _recorded_key(recordings) if recordings else _synthesized_key(prompt)
            if old.get(prompt_id) == key and _outputs_exist(out_dir, prompt_id):
                report.up_to_date.append(prompt_id)
            elif recordings:
                _build_from_recordings(prompt_id, recordings, out_dir)
                report.recorded.append(prompt_id)
            else:
                _synthesize(prompt, out_dir)
                report.synthesized.append(prompt_id)
            new[prompt_id] = key
    finally:
        # Record what is built even when a later prompt fails.
        _write_manifest(manifest_path, new)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.prompts", description=__doc__)
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # SettingsError: names the variable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser.add_argument("out_dir", nargs="?", type=Path, default=settings.prompts_build_dir)
    parser.add_argument("--texts", type=Path, default=settings.prompts_file)
    parser.add_argument("--recorded", type=Path, default=settings.recorded_dir)
    args = parser.parse_args(argv)
    try:
        report = build_prompts(
            load_prompt_texts(args.texts), args.out_dir, recorded_dir=args.recorded
        )
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report)
    return 0


def _prompt(prompt_id: str, value: str | Mapping[str, object]) -> PromptText:
    if isinstance(value, str):
        return PromptText(prompt_id, " ".join(value.split()))
    rate = value.get("voice_rate", DEFAULT_RATE)
    assert isinstance(rate, int)  # the schema's integer
    chat = value.get("chat")
    return PromptText(
        prompt_id,
        " ".join(str(value["text"]).split()),
        rate,
        None if chat is None else str(chat).strip(),
    )


def _recordings(recorded_dir: Path | None, prompt_id: str) -> dict[str, Path]:
    if recorded_dir is None:
        return {}
    found = {ext: recorded_dir / f"{prompt_id}.{ext}" for ext in FORMATS}
    return {ext: path for ext, path in found.items() if path.is_file()}


def _synthesized_key(prompt: PromptText) -> str:
    return _digest(
        {
            "pipeline": PIPELINE_VERSION,
            "text": prompt.text,
            "voice": VOICE,
            "rate": prompt.voice_rate,
            "tools": _tool_versions(),
        }
    )


def _recorded_key(recordings: Mapping[str, Path]) -> str:
    files = {ext: hashlib.sha256(path.read_bytes()).hexdigest() for ext, path in recordings.items()}
    converts = len(recordings) < len(FORMATS)
    sox = _tool_version("sox") if converts else None
    return _digest({"pipeline": PIPELINE_VERSION, "recorded": files, "sox": sox})


def _digest(parts: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _tool_versions() -> dict[str, str]:
    return {tool: _tool_version(tool) for tool in TOOLS}


@cache
def _tool_version(tool: str) -> str:
    output = _run(f"{tool} --version", [tool, "--version"]).stdout.decode(errors="replace")
    # espeak-ng appends its data path, which says nothing about the audio.
    first_line = output.strip().splitlines()[0] if output.strip() else ""
    return " ".join(first_line.split("Data at:")[0].split())


def _synthesize(prompt: PromptText, out_dir: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        wav = Path(tmp) / "tts.wav"
        # "--" so that no prompt text is ever read as an option.
        espeak = ["espeak-ng", "-v", VOICE, "-s", str(prompt.voice_rate), "-w", str(wav)]
        _run(f"prompt {prompt.id!r}", [*espeak, "--", prompt.text])
        _convert_all(prompt.id, ["-t", "wav", str(wav)], Path(tmp), out_dir, _TTS_EFFECTS)


def _build_from_recordings(prompt_id: str, recordings: Mapping[str, Path], out_dir: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        if len(recordings) < len(FORMATS):
            source_ext = next(ext for ext in _SOURCE_PREFERENCE if ext in recordings)
            source = [*_RAW_FORMATS[source_ext], str(recordings[source_ext])]
            _convert_all(prompt_id, source, Path(tmp), None)
        for ext, path in recordings.items():
            shutil.copyfile(path, Path(tmp) / f"{prompt_id}.{ext}")
        _install(prompt_id, Path(tmp), out_dir)


def _convert_all(
    prompt_id: str,
    source: list[str],
    tmp: Path,
    out_dir: Path | None,
    effects: tuple[str, ...] = (),
) -> None:
    """Convert ``source`` (sox input options and file) to every format in ``tmp``.

    When ``out_dir`` is given, the finished set is then moved there.
    """
    for ext, options in _RAW_FORMATS.items():
        # -D: no dither. sox dithers with fresh noise by default, which makes
        # every build differ and adds hiss to u-law/A-law silences.
        target = str(tmp / f"{prompt_id}.{ext}")
        _run(f"prompt {prompt_id!r}", ["sox", "-D", *source, *options, target, *effects])
    if out_dir is not None:
        _install(prompt_id, tmp, out_dir)


def _install(prompt_id: str, tmp: Path, out_dir: Path) -> None:
    for ext in FORMATS:
        built = tmp / f"{prompt_id}.{ext}"
        if built.stat().st_size == 0:
            raise PromptBuildError(f"prompt {prompt_id!r}: {built.name} came out empty")
    # Moved only once all formats exist, so a failed build never leaves half a prompt.
    for ext in FORMATS:
        os.replace(tmp / f"{prompt_id}.{ext}", out_dir / f"{prompt_id}.{ext}")


def _outputs_exist(out_dir: Path, prompt_id: str) -> bool:
    files = [out_dir / f"{prompt_id}.{ext}" for ext in FORMATS]
    return all(path.is_file() and path.stat().st_size > 0 for path in files)


def _run(what: str, command: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run a build tool (never through a shell) with a timeout; ``what`` heads any error."""
    try:
        done = subprocess.run(command, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise PromptBuildError(
            f"{what}: {command[0]} is not installed (the build needs {', '.join(TOOLS)})"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise PromptBuildError(f"{what}: {command[0]} took over {TOOL_TIMEOUT}s") from exc
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()[-500:]
        raise PromptBuildError(f"{what}: {command[0]} exited {done.returncode}: {stderr}")
    return done


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no manifest or a damaged one: rebuild everything
    prompts = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(prompts, dict):
        return {}
    return {str(k): str(v) for k, v in prompts.items()}


def _write_manifest(path: Path, keys: Mapping[str, str]) -> None:
    body = json.dumps(
        {"pipeline": PIPELINE_VERSION, "prompts": dict(sorted(keys.items()))}, indent=2
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(body + "\n", encoding="utf-8")
    os.replace(tmp, path)


if __name__ == "__main__":
    raise SystemExit(main())
