"""Errors of the Asterisk sandbox; every message says what to do next."""


class SandboxError(RuntimeError):
    """The sandbox cannot be built, started, reached or stopped."""


class HostToolsError(SandboxError):
    """A host tool the sandbox needs is missing and cannot be installed here."""
