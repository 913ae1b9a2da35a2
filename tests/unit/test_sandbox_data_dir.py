"""Each sandbox instance's own Asterisk data directory (``manager.link_data_dir``).

Observed kind: every instance copied its prompts into the cached root's
``/usr/share/asterisk/sounds/es/citas``, which all instances on the machine share
(two e2e workers, a demo, other checkouts): a starting instance truncated files
another was playing, and one checkout heard another's prompts. Now the root is
only read; each instance links it into its own data directory, beside its own
``citas/``. A fake root with the package's shapes of links (absolute inside the
chroot, through ``/etc/alternatives``, dangling) checks every shape.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.manager import install_prompts, link_data_dir
from ivr.sandbox.rootfs import RootFs
from ivr.settings import Settings

DATA = "/usr/share/asterisk"


def fake_root(tmp_path: Path) -> RootFs:
    root = tmp_path / "rootfs-sid-x"
    files = {
        f"{DATA}/rest-api/channels.json": "{}",
        f"{DATA}/documentation/core-en_US.xml": "<docs/>",
        f"{DATA}/sounds/es_MX_f_Allison/hello-world.gsm": "hola",
        f"{DATA}/sounds/es_MX_f_Allison/digits/1.gsm": "uno",
        f"{DATA}/sounds/es_MX_f_Allison/citas/welcome.ulaw": "stale, from an older checkout",
        f"{DATA}/sounds/en_US_f_Allison/hello-world.gsm": "hello",
    }
    for path, text in files.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    links = {  # as Debian installs them: absolute, meant for inside the chroot
        "/etc/alternatives/asterisk-prompt-es": f"{DATA}/sounds/es_MX_f_Allison",
        "/etc/alternatives/asterisk-prompt-en": f"{DATA}/sounds/en_US_f_Allison",
        f"{DATA}/sounds/es": "/etc/alternatives/asterisk-prompt-es",
        f"{DATA}/sounds/en": "/etc/alternatives/asterisk-prompt-en",
        f"{DATA}/sounds/recordings": "/var/lib/asterisk/sounds/custom",  # dangling
    }
    for link, target in links.items():
        (root / link.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / link.lstrip("/")).symlink_to(target)
    return RootFs(root)


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (links followed) and its text."""
    out = {}
    for folder, _dirs, names in os.walk(path, followlinks=True):
        for name in names:
            file = Path(folder) / name
            out[str(file.relative_to(path))] = file.read_text()
    return out


def snapshot(path: Path) -> dict[str, str]:
    """Every file and link under ``path`` (links not followed): text or target."""
    return {
        str(p.relative_to(path)): os.readlink(p) if p.is_symlink() else p.read_text()
        for p in path.rglob("*")
        if p.is_symlink() or p.is_file()
    }


def test_the_instance_sees_the_package_and_its_own_prompts_only(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    before = snapshot(root.path)

    citas = link_data_dir(root, "/srv/citas/a/data")

    data = root.path / "srv/citas/a/data"
    assert citas == data / "sounds/es/citas" and citas.is_dir() and not citas.is_symlink()
    assert list(citas.iterdir()) == []  # not the root's stale citas/
    assert tree(data) == {
        "rest-api/channels.json": "{}",
        "documentation/core-en_US.xml": "<docs/>",
        "sounds/es/hello-world.gsm": "hola",
        "sounds/es/digits/1.gsm": "uno",
        "sounds/en/hello-world.gsm": "hello",
        "sounds/en_US_f_Allison/hello-world.gsm": "hello",
        "sounds/es_MX_f_Allison/hello-world.gsm": "hola",
        "sounds/es_MX_f_Allison/digits/1.gsm": "uno",
        "sounds/es_MX_f_Allison/citas/welcome.ulaw": "stale, from an older checkout",
    }
    # Relative links: the same files from the host and inside the chroot.
    for link in [p for p in data.rglob("*") if p.is_symlink()]:
        assert not os.readlink(link).startswith("/"), link
        in_root = "/" + str(link.relative_to(root.path))
        assert root.inside(in_root) == link.resolve(), link
    # The shared root is only read: what changed is the instance's own directory.
    assert {k: v for k, v in snapshot(root.path).items() if not k.startswith("srv/")} == before


def test_instances_never_hear_each_others_prompts(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "prompts.yaml").write_text('goodbye: "Hasta pronto."\n', encoding="utf-8")
    settings = Settings.from_env({"CITAS_PROMPTS_DIR": str(prompts)})

    mine = install_prompts(settings, link_data_dir(root, "/srv/citas/a/data"))
    theirs = link_data_dir(root, "/srv/citas/b/data")

    assert sorted(p.name for p in mine.iterdir()) == [
        "goodbye.alaw", "goodbye.sln", "goodbye.ulaw"
    ]  # fmt: skip
    assert list(theirs.iterdir()) == []
    es = root.inside(f"{DATA}/sounds/es")
    assert sorted(p.name for p in (es / "citas").iterdir()) == ["welcome.ulaw"]
    # A new `up` starts from a fresh directory: nothing left from the last prompt set.
    again = link_data_dir(root, "/srv/citas/a/data")
    assert list(again.iterdir()) == []
    assert tree(root.path / "srv/citas/a/data/sounds/es/digits") == {"1.gsm": "uno"}


def test_a_root_without_asterisk_data_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "empty-root").mkdir()
    with pytest.raises(SandboxError, match=r"the sandbox root has no /usr/share/asterisk "):
        link_data_dir(RootFs(tmp_path / "empty-root"), "/srv/citas/a/data")
