"""A sandbox support extension answered by sipp: the tester's side of an escalation call.

``ivr cases phone 6001`` (and the e2e tests) start a sipp UAS on the port of
support extension 6001 (``ivr.sandbox.render.support_port``) for one call: it
answers and presses 1 (``--press``), or refuses with 480 (``--no-answer``).
``SupportPhone.wait`` says whether sipp saw the call through, with the SIP
messages it logged.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.sandbox.render import support_port
from ivr.scenarios.runner import free_media_port
from ivr.scenarios.sippxml import support_xml
from ivr.settings import Settings


@dataclass
class PhoneReport:
    """``rc``: sipp's exit code (0: every call went as scripted); ``invites``:
    how many INVITEs it received; ``expected``: how many it was started for;
    ``tail``: the end of its output."""

    extension: str
    rc: int
    invites: int
    tail: str
    expected: int = 1

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.invites == self.expected


class SippPhone:
    """sipp as a UAS on ``port`` with the scenario ``xml``, for ``calls`` calls (0: until
    stopped); the sandbox's phones (support extensions, desk agents) are each one.
    It is our own child process, ended by its pid (``wait``, ``stop``).
    """

    def __init__(
        self, settings: Settings, name: str, port: int, xml: str, workdir: Path, *,
        calls: int = 1, timeout_s: float | None = 180.0,
    ) -> None:  # fmt: skip
        self.extension, self.workdir, self.calls = name, workdir, calls
        self.timeout_s = timeout_s
        workdir.mkdir(parents=True, exist_ok=True)
        scenario = workdir / f"{name}.xml"
        scenario.write_text(xml, encoding="utf-8")
        self.messages = workdir / f"{name}_messages.log"
        cmd = [
            "sipp", "-i", settings.host, "-p", str(port),
            "-mi", settings.host, "-mp", str(free_media_port()), "-nostdin", "-sf", str(scenario),
            "-trace_err", "-error_file", str(workdir / f"{name}_errors.log"),
            "-trace_msg", "-message_file", str(self.messages),
        ]  # fmt: skip
        if calls:
            cmd += ["-m", str(calls)]
        if timeout_s is not None:
            cmd += ["-timeout", f"{int(timeout_s)}s", "-timeout_error"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir
        )

    def received_invites(self) -> int:
        """INVITEs received so far (sipp's message log)."""
        try:
            text = self.messages.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return text.count("INVITE sip:")

    def wait(self, timeout_s: float | None = None) -> PhoneReport:
        """Wait for sipp's end (killing it after ``timeout_s``, default its own timeout + 10 s)."""
        within = timeout_s or (self.timeout_s + 10 if self.timeout_s is not None else None)
        try:
            out, _ = self.proc.communicate(timeout=within)
            rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=10)
            rc = -9
        tail = out.decode("utf-8", errors="replace")[-1500:] if out else ""
        return PhoneReport(self.extension, rc, self.received_invites(), tail, self.calls)

    def stop(self) -> None:
        """End sipp now if it still runs (a test's cleanup); either way its output pipe
        is read and closed (a phone whose sipp ended by itself left it open)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


class SupportPhone(SippPhone):
    """sipp listening as support extension ``extension`` for one call."""

    def __init__(
        self, settings: Settings, extension: str, workdir: Path, *, answer: bool,
        digits: str = "1", timeout_s: float = 180.0,
    ) -> None:  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            settings, f"support-{extension}", support_port(settings, extension),
            support_xml(workdir, answer=answer, digits=digits), workdir, timeout_s=timeout_s,
        )  # fmt: skip
        self.extension = extension
