"""Installing host packages starts none of their services (ivr/sandbox/hosttools.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ivr.sandbox.hosttools import services_held

SYSTEMD = Path("/run/systemd/system").is_dir()


def test_a_refusing_policy_stands_for_the_install_and_goes_after(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with services_held(policy):
        if SYSTEMD:  # systemctl mask does it there (mask_service)
            assert not policy.exists()
        else:
            # invoke-rc.d's answer "action forbidden by policy" (README.policy-rc.d)
            assert subprocess.run([str(policy), "docker", "start"], check=False).returncode == 101
    assert not policy.exists()


def test_the_machine_s_own_policy_is_left_as_it_is(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    with services_held(policy):
        assert policy.read_text() == "#!/bin/sh\nexit 0\n"
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
