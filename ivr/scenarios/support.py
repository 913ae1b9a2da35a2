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
from ivr.scenarios.runner import free_udp_port
from ivr.scenarios.sippxml import support_xml
from ivr.settings import Settings


@dataclass
class PhoneReport:
    """``rc``: sipp's exit code (0: the one call went as scripted); ``invites``:
    how many INVITEs it received; ``tail``: the end of its output."""

    extension: str
    rc: int
    invites: int
    tail: str

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.invites == 1


class SupportPhone:
    """sipp listening as support extension ``extension`` for one call; end it
    with ``wait`` (it is our own child process, ended by its pid)."""

    def __init__(
        self, settings: Settings, extension: str, workdir: Path, *, answer: bool,
        digits: str = "1", timeout_s: float = 180.0,
    ) -> None:  # fmt: skip
        self.extension, self.workdir, self.timeout_s = extension, workdir, timeout_s
        workdir.mkdir(parents=True, exist_ok=True)
        scenario = workdir / f"support-{extension}.xml"
        scenario.write_text(support_xml(workdir, answer=answer, digits=digits), encoding="utf-8")
        self.messages = workdir / f"support-{extension}_messages.log"
        cmd = [
            "sipp", "-i", settings.host, "-p", str(support_port(settings, extension)),
            "-mi", settings.host, "-mp", str(free_udp_port()), "-nostdin",
            "-sf", str(scenario), "-m", "1", "-timeout", f"{int(timeout_s)}s", "-timeout_error",
            "-trace_err", "-error_file", str(workdir / f"support-{extension}_errors.log"),
            "-trace_msg", "-message_file", str(self.messages),
        ]  # fmt: skip
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
        try:
            out, _ = self.proc.communicate(timeout=timeout_s or self.timeout_s + 10)
            rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=10)
            rc = -9
        tail = out.decode("utf-8", errors="replace")[-1500:] if out else ""
        return PhoneReport(self.extension, rc, self.received_invites(), tail)

    def stop(self) -> None:
        """End sipp now if it still runs (a test's cleanup)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)
