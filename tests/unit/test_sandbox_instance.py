"""Sandbox instance state on disk, and the pid check that guards against pid reuse."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from ivr.sandbox.instance import InstancePaths, InstanceState, other_instances_alive, pid_alive
from ivr.settings import Ports, Settings

# Above the kernel's largest possible pid_max (2**22): never a running process.
NO_SUCH_PID = 2**22 + 1


def settings_for(tmp_path: Path, instance: str = "t1") -> Settings:
    return replace(Settings(), state_dir=tmp_path / "state", instance=instance)


def state(instance: str = "t1", root: str = "/var/cache/citas-ivr/rootfs-x") -> InstanceState:
    return InstanceState(
        instance=instance,
        root=root,
        host="127.0.0.1",
        ports={"sip": 5070, "http": 8098, "ami": 5048, "agi": 4583, "rtp_start": 10020,
               "rtp_end": 11019, "agent_sip": 5080, "ops_http": 8090},
        supervisor_pid=NO_SUCH_PID,
        asterisk_pid=None,
        asterisk_version="Asterisk 22.1.0",
        started_at=1_700_000_000.5,
    )  # fmt: skip


def test_save_then_load_gives_the_same_state(tmp_path: Path) -> None:
    paths = InstancePaths(settings_for(tmp_path))
    saved = state()

    paths.save(saved)

    assert paths.state_file == tmp_path / "state" / "t1" / "sandbox.json"
    assert paths.load() == saved
    assert json.loads(paths.state_file.read_text(encoding="utf-8"))["instance"] == "t1"
    assert not paths.state_file.with_suffix(".tmp").exists()


def test_save_replaces_the_previous_state(tmp_path: Path) -> None:
    paths = InstancePaths(settings_for(tmp_path))
    paths.save(state())

    paths.save(replace(state(), asterisk_pid=4242))

    loaded = paths.load()
    assert loaded is not None and loaded.asterisk_pid == 4242


def test_load_without_a_state_file_is_none(tmp_path: Path) -> None:
    assert InstancePaths(settings_for(tmp_path)).load() is None


def test_instance_paths_and_ports() -> None:
    s = state(root="/cache/rootfs-x")

    assert s.inst_in_root == "/srv/citas/t1"
    assert s.inst_on_host == Path("/cache/rootfs-x/srv/citas/t1")
    assert s.settings_ports() == Ports(5070, 8098, 5048, 4583, 10020, 11019, 5080, 8090)


def test_pid_alive_is_false_without_a_pid() -> None:
    assert pid_alive(None, "anything") is False
    assert pid_alive(0, "anything") is False


def test_pid_alive_is_false_for_a_dead_pid() -> None:
    assert pid_alive(NO_SUCH_PID, "python") is False


def own_program() -> str:
    return Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()


def test_pid_alive_needs_the_marker_in_the_command_line() -> None:
    assert pid_alive(os.getpid(), own_program()) is True
    assert pid_alive(os.getpid(), "ivr.sandbox.supervisor-not-this-process") is False


def test_other_instances_alive_ignores_dead_self_and_other_roots(tmp_path: Path) -> None:
    root = "/cache/rootfs-x"
    for s in (state("t1", root), state("t2", root), state("t3", "/cache/other")):
        InstancePaths(settings_for(tmp_path, s.instance)).save(s)
    # t2 shares the root, but its recorded supervisor is not running.
    assert other_instances_alive(tmp_path / "state", root, except_instance="t1") is False


def test_other_instances_alive_skips_unreadable_state(tmp_path: Path) -> None:
    broken = tmp_path / "state" / "t9" / "sandbox.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json", encoding="utf-8")

    assert other_instances_alive(tmp_path / "state", "/cache/rootfs-x", "t1") is False
