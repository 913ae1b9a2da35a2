"""The sandbox root: mirror discovery from apt sources, chroot-relative symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.rootfs import RootFs, apt_mirror, rootfs_key

# Made-up hosts: the repository never names a real registry.
MAIN = "http://mirror.example.invalid/debian"
SECURITY = "http://security.example.invalid/debian-security"


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "apt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (tmp_path / "apt" / "sources.list.d").mkdir(parents=True, exist_ok=True)
    return tmp_path / "apt"


def test_deb822_sources_skip_security_and_trailing_slash(tmp_path: Path) -> None:
    sources = (
        f"Types: deb\nURIs: {SECURITY}\nSuites: bookworm-security\nComponents: main\n\n"
        f"Types: deb\nURIs: {MAIN}/\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    directory = apt_dir(tmp_path, {"sources.list.d/debian.sources": sources})

    assert apt_mirror(directory) == MAIN


def test_one_line_sources_list_with_options(tmp_path: Path) -> None:
    sources_list = (
        "# deb http://commented.example.invalid/debian sid main\n"
        "deb-src http://src.example.invalid/debian sid main\n"
        "deb http://updates.example.invalid/debian-updates bookworm-updates main\n"
        f"deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MAIN} bookworm main\n"
    )
    directory = apt_dir(tmp_path, {"sources.list": sources_list})

    assert apt_mirror(directory) == MAIN


def test_deb822_comes_before_sources_list(tmp_path: Path) -> None:
    directory = apt_dir(
        tmp_path,
        {
            "sources.list": "deb http://second.example.invalid/debian sid main\n",
            "sources.list.d/a.sources": f"Types: deb\nURIs: {MAIN}\nSuites: sid\n",
        },
    )

    assert apt_mirror(directory) == MAIN


def test_list_files_in_sources_list_d_are_read(tmp_path: Path) -> None:
    directory = apt_dir(tmp_path, {"sources.list.d/extra.list": "deb file:/srv/mirror sid main\n"})

    assert apt_mirror(directory) == "file:/srv/mirror"


def test_no_usable_mirror_is_an_error_saying_what_to_set(tmp_path: Path) -> None:
    directory = apt_dir(
        tmp_path,
        {
            "sources.list": f"deb {SECURITY} bookworm-security main\n",
            "sources.list.d/cd.list": "deb cdrom:[Debian]/ bookworm main\n",
        },
    )

    with pytest.raises(SandboxError, match="CITAS_DEBIAN_MIRROR"):
        apt_mirror(directory)


def test_an_empty_apt_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no Debian mirror found"):
        apt_mirror(apt_dir(tmp_path, {}))


@pytest.fixture
def root(tmp_path: Path) -> RootFs:
    base = tmp_path / "root"
    for d in ("etc/alternatives", "usr/bin", "usr/sbin", "usr/share/asterisk/sounds/es-real"):
        (base / d).mkdir(parents=True)
    (base / "usr/bin/real-editor").write_text("#!/bin/sh\n", encoding="utf-8")
    os.symlink("/usr/bin/real-editor", base / "etc/alternatives/citas-editor")
    os.symlink("/etc/alternatives/citas-editor", base / "usr/bin/citas-editor")
    os.symlink("usr/bin", base / "bin")  # merged /usr, as in Debian
    os.symlink("es-real", base / "usr/share/asterisk/sounds/es")
    return RootFs(base)


def test_inside_maps_a_plain_path_under_the_root(root: RootFs) -> None:
    assert root.inside("/usr/share/asterisk") == root.path / "usr/share/asterisk"
    assert root.inside("/srv/citas/not-yet") == root.path / "srv/citas/not-yet"


def test_inside_follows_absolute_symlinks_relative_to_the_root(root: RootFs) -> None:
    assert root.inside("/usr/bin/citas-editor") == root.path / "usr/bin/real-editor"


def test_inside_follows_relative_symlinks(root: RootFs) -> None:
    real = root.path.resolve()
    assert (
        root.inside("/usr/share/asterisk/sounds/es") == real / "usr/share/asterisk/sounds/es-real"
    )
    assert root.inside("/bin/citas-editor") == root.path / "usr/bin/real-editor"


def test_a_relative_symlink_to_an_alternative_stays_inside_the_root(root: RootFs) -> None:
    # /usr/sbin/citas-editor -> ../bin/citas-editor -> /etc/alternatives/... (absolute,
    # inside the chroot). Resolving the relative hop on the host follows the
    # absolute link on the host and leaves the root.
    os.symlink("../bin/citas-editor", root.path / "usr/sbin/citas-editor")

    resolved = root.inside("/usr/sbin/citas-editor")

    assert resolved.resolve() == (root.path / "usr/bin/real-editor").resolve()


@pytest.mark.parametrize("target", ["/etc/loop-", "loop-"], ids=["absolute", "relative"])
def test_a_symlink_loop_is_a_sandbox_error(root: RootFs, target: str) -> None:
    # inside() counts hops to report "symlink loop" as a SandboxError; an
    # absolute loop recurses instead (RecursionError) and a relative one ends in
    # Path.resolve's RuntimeError.
    os.symlink(target + "b", root.path / "etc/loop-a")
    os.symlink(target + "a", root.path / "etc/loop-b")

    with pytest.raises(SandboxError, match="symlink loop"):
        root.inside("/etc/loop-a/file")


def test_rootfs_key_names_the_suite_and_is_stable() -> None:
    assert rootfs_key() == rootfs_key()
    assert rootfs_key().startswith("sid-")
    assert len(rootfs_key()) == len("sid-") + 10
