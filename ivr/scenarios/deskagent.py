"""A sandbox desk agent's phone played by sipp: it REGISTERs, then answers queue calls.

``ivr desk agent 7001`` and the e2e tests run one. The answering side is a
``SippPhone`` (the mechanism of the support extensions, ``ivr.scenarios.support``)
on the agent's port (``ivr.sandbox.desk.desk_agent_port``) with
``desk_agent_xml``; the registration is a one-shot sipp UAC (``register_xml``)
whose Contact names that port. ``stop``/``wait`` remove the registration again,
so Asterisk sees the agent UNAVAILABLE (app_queue skips it) once the phone is gone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ivr.sandbox.desk import desk_agent_port
from ivr.sandbox.instance import udp_port_taken
from ivr.scenarios.runner import free_udp_port, invite_headers
from ivr.scenarios.sippxml import desk_agent_xml, register_xml
from ivr.scenarios.support import PhoneReport, SippPhone
from ivr.settings import Settings

REGISTER_EXPIRES_S = 3600
REGISTER_TIMEOUT_S = 15


class RegistrationFailed(RuntimeError):
    """Asterisk did not answer the agent's REGISTER with 200 OK; the message has sipp's output."""


class DeskAgentPhone:
    """sipp as desk agent ``extension``: registered and answering until ``calls`` calls
    are done (0: until ``stop``). ``answer_after_s``: seconds it rings before answering
    (a CANCEL meanwhile ends that call unanswered); ``talk_s``: seconds before it hangs up.

    Raises ``SandboxError`` (not a desk agent) or ``RegistrationFailed``.
    """

    def __init__(
        self, settings: Settings, extension: str, workdir: Path, *, answer_after_s: float = 0.0,
        talk_s: float = 5.0, calls: int = 1, timeout_s: float | None = 180.0,
    ) -> None:  # fmt: skip
        self.settings, self.extension, self.workdir = settings, extension, workdir
        self.port = desk_agent_port(settings, extension)
        if udp_port_taken(settings.host, self.port):
            # Registering would hand Asterisk the contact of whatever holds the port.
            raise RegistrationFailed(
                f"desk agent {extension}: port {settings.host}:{self.port} is taken "
                "(is another phone of this agent running?)"
            )
        xml = desk_agent_xml(answer_after_ms=int(answer_after_s * 1000), talk_ms=int(talk_s * 1000))
        self.phone = SippPhone(
            settings, f"desk-{extension}", self.port, xml, workdir, calls=calls, timeout_s=timeout_s
        )
        try:
            self.register(REGISTER_EXPIRES_S)
        except RegistrationFailed:
            self.phone.stop()
            raise

    @property
    def messages(self) -> Path:
        return self.phone.messages

    def register(self, expires_s: int) -> None:
        """Send one REGISTER (``expires_s`` 0: unregister) and wait for its 200 OK."""
        s = self.settings
        name = f"register-{self.extension}-{expires_s}"
        scenario = self.workdir / f"{name}.xml"
        scenario.write_text(register_xml(self.extension, self.port, expires_s), encoding="utf-8")
        cmd = [
            "sipp", "-i", s.host, "-p", str(free_udp_port()), "-nostdin", "-sf", str(scenario),
            "-m", "1", "-timeout", f"{REGISTER_TIMEOUT_S}s", "-timeout_error",
            "-trace_err", "-error_file", str(self.workdir / f"{name}_errors.log"),
            f"{s.host}:{s.ports.sip}",
        ]  # fmt: skip
        done = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=REGISTER_TIMEOUT_S + 15,
            cwd=self.workdir, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RegistrationFailed(
                f"desk agent {self.extension}: REGISTER (Expires {expires_s}) to "
                f"{s.host}:{s.ports.sip} failed, sipp exit {done.returncode}: "
                f"{(done.stdout + done.stderr)[-800:]}"
            )

    def received_invites(self) -> int:
        return self.phone.received_invites()

    def invite_headers(self) -> list[dict[str, str]]:
        """The X-Citas-* headers of each INVITE received so far, in order."""
        return invite_headers(self.messages)

    def wait(self, timeout_s: float | None = None) -> PhoneReport:
        """Wait for the calls to be done, then unregister."""
        try:
            return self.phone.wait(timeout_s)
        finally:
            self._unregister()

    def stop(self) -> None:
        """End sipp now and unregister (a test's cleanup, Ctrl-C in the CLI)."""
        self.phone.stop()
        self._unregister()

    def _unregister(self) -> None:
        try:
            self.register(0)
        except (RegistrationFailed, subprocess.TimeoutExpired, OSError):
            pass  # Asterisk gone (sandbox down): nothing to remove
