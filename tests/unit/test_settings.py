"""Settings from CITAS_* variables: port blocks, overrides, and refused values."""

from __future__ import annotations

import re

import pytest

from ivr.settings import Ports, Settings, SettingsError


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env({})

    assert s.ports == Ports()
    assert (s.instance, s.host, s.app_name) == ("default", "127.0.0.1", "citas-ivr")
    assert s.ari_url == "http://127.0.0.1:8088/ari"
    assert s.request_timeout == 5.0


def test_offset_shifts_every_port_and_the_rtp_range_twice() -> None:
    s = Settings.from_env({"CITAS_PORT_OFFSET": "1000"})

    assert s.ports == Ports(
        sip=6060, http=9088, ami=6038, agi=5573, rtp_start=12000, rtp_end=12999,
        agent_sip=6070, ops_http=9080, whatsapp_sim=9095, support_sip=6080, smtp=3525,
        desk_sip=6090,
    )  # fmt: skip
    assert s.ari_url == "http://127.0.0.1:9088/ari"


def test_two_offsets_give_disjoint_port_blocks() -> None:
    def used(p: Ports) -> set[int]:
        return {p.sip, p.http, p.ami, p.agi, p.agent_sip, p.ops_http, p.whatsapp_sim, p.smtp} | set(
            range(p.rtp_start, p.rtp_end + 1)
        )

    a = Settings.from_env({"CITAS_PORT_OFFSET": "0"}).ports
    b = Settings.from_env({"CITAS_PORT_OFFSET": "1000"}).ports

    assert not used(a) & used(b)


def test_explicit_port_variables_win_over_the_offset() -> None:
    s = Settings.from_env(
        {"CITAS_PORT_OFFSET": "10", "CITAS_SIP_PORT": "5999", "CITAS_RTP_START": "10500"}
    )

    assert (s.ports.sip, s.ports.rtp_start) == (5999, 10500)
    assert (s.ports.http, s.ports.rtp_end) == (8098, 11019)  # still shifted


def test_an_empty_rtp_range_is_refused() -> None:
    with pytest.raises(SettingsError, match="RTP range 20000-11019"):
        Settings.from_env({"CITAS_PORT_OFFSET": "10", "CITAS_RTP_START": "20000"})


def test_empty_values_mean_the_default() -> None:
    s = Settings.from_env(
        {"CITAS_PORT_OFFSET": "", "CITAS_SIP_PORT": "", "CITAS_REQUEST_TIMEOUT": ""}
    )

    assert s.ports.sip == 5060
    assert s.request_timeout == 5.0


def test_text_settings_and_paths() -> None:
    s = Settings.from_env(
        {
            "CITAS_INSTANCE": "b",
            "CITAS_ARI_USER": "u",
            "CITAS_ARI_PASSWORD": "p",
            "CITAS_APP": "citas-test",
            "CITAS_STATE_DIR": "/tmp/citas-state",
            "CITAS_REQUEST_TIMEOUT": "2.5",
        }
    )

    assert (s.instance, s.ari_user, s.ari_password, s.app_name) == ("b", "u", "p", "citas-test")
    assert s.request_timeout == 2.5
    assert s.database_url == "sqlite+aiosqlite:////tmp/citas-state/b/citas.db"


def test_an_explicit_database_url_wins() -> None:
    url = "postgresql+asyncpg://citas@db.example.invalid/citas"

    assert Settings.from_env({"CITAS_DB_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("CITAS_PORT_OFFSET", "ten", "is not an integer"),
        ("CITAS_PORT_OFFSET", "-5", "is out of range 0-65535"),
        ("CITAS_SIP_PORT", "70000", "is out of range 0-65535"),
        ("CITAS_HTTP_PORT", "80.5", "is not an integer"),
        ("CITAS_RTP_END", "1e4", "is not an integer"),
        ("CITAS_REQUEST_TIMEOUT", "soon", "is not a number"),
        ("CITAS_REQUEST_TIMEOUT", "0", "must be positive"),
        ("CITAS_REQUEST_TIMEOUT", "-1", "must be positive"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})

    assert str(caught.value) == f"{name}={value!r} {problem}"


def test_an_offset_that_pushes_ports_past_65535_is_refused() -> None:
    # 30000 passes the 0-65535 check on its own, but the RTP range moves by
    # twice the offset, to 70000-70999: ports that cannot exist must be refused
    # here, naming the variable, not fail later inside Asterisk.
    with pytest.raises(SettingsError, match="CITAS_PORT_OFFSET"):
        Settings.from_env({"CITAS_PORT_OFFSET": "30000"})


def test_sms_provider_settings() -> None:
    default = Settings.from_env({})
    s = Settings.from_env(
        {
            "CITAS_SMS_URL": "https://sms.example.invalid/messages",
            "CITAS_SMS_TOKEN": "secret",
            "CITAS_SMS_RETRY_S": "0.5",
        }
    )

    assert (default.sms_url, default.sms_token, default.sms_retry_s) == ("", "", 2.0)
    assert s.sms_url == "https://sms.example.invalid/messages"
    assert (s.sms_token, s.sms_retry_s) == ("secret", 0.5)
    with pytest.raises(SettingsError, match="CITAS_SMS_RETRY_S='0' must be positive"):
        Settings.from_env({"CITAS_SMS_RETRY_S": "0"})


# --- e-mail (ivr.mail): the relay, or the sandbox's SMTP peer ---


def test_mail_defaults_to_the_sandbox_peer_and_the_smtp_port_moves_with_the_offset() -> None:
    s = Settings.from_env({"CITAS_PORT_OFFSET": "1100"})

    assert (s.mail.host, s.mail.port, s.mail.security) == ("", 0, "starttls")
    assert s.ports.smtp == 3625
    assert Settings.from_env({"CITAS_SMTP_PORT": "2626"}).ports.smtp == 2626


def test_mail_variables_set_the_relay() -> None:
    s = Settings.from_env({
        "CITAS_MAIL_HOST": "smtp.eps.example.co", "CITAS_MAIL_PORT": "2587",
        "CITAS_MAIL_SECURITY": "tls", "CITAS_MAIL_USER": "citas", "CITAS_MAIL_PASSWORD": "x",
        "CITAS_MAIL_FROM": "EPS Citas <citas@eps.example.co>", "CITAS_MAIL_TIMEOUT": "3",
    })  # fmt: skip

    mail = s.mail
    assert (mail.host, mail.port, mail.security, mail.user, mail.password) == (
        "smtp.eps.example.co", 2587, "tls", "citas", "x")  # fmt: skip
    assert (mail.sender, mail.timeout) == ("EPS Citas <citas@eps.example.co>", 3.0)
    assert "password='x'" not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CITAS_MAIL_SECURITY": "ssl"},
            "CITAS_MAIL_SECURITY='ssl' is not one of starttls, tls, none",
        ),
        ({"CITAS_MAIL_PORT": "veinticinco"}, "CITAS_MAIL_PORT='veinticinco' is not an integer"),
        ({"CITAS_MAIL_TIMEOUT": "0"}, "CITAS_MAIL_TIMEOUT='0' must be positive"),
    ],
)
def test_a_bad_mail_setting_is_refused_with_its_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", 1), ("2", 2), (" 3 ", 3), ("64", 64), ("", None), ("auto", None)],
)
def test_controllers_an_integer_or_auto_the_cores(raw: str, expected: int | None) -> None:
    import os

    s = Settings.from_env({"CITAS_CONTROLLERS": raw})

    assert s.controllers == (expected or len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("raw", ["0", "-1", "65", "two", "1.5", "auto2"])
def test_a_bad_controllers_value_is_refused_with_its_name(raw: str) -> None:
    with pytest.raises(SettingsError, match="CITAS_CONTROLLERS"):
        Settings.from_env({"CITAS_CONTROLLERS": raw})


@pytest.mark.parametrize(("raw", "chosen"), [(None, "websocket"), ("", "websocket"),
                                             ("websocket", "websocket"), ("http", "http")])  # fmt: skip
def test_the_ari_rest_transport_is_the_websocket_unless_told(raw: str | None, chosen: str) -> None:
    env = {} if raw is None else {"CITAS_ARI_REST": raw}
    assert Settings.from_env(env).ari_rest == chosen


@pytest.mark.parametrize("raw", ["HTTP", "ws", "websockets", " http"])
def test_an_unknown_ari_rest_transport_is_refused_by_name(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"CITAS_ARI_REST=.* is not one of websocket, http$"):
        Settings.from_env({"CITAS_ARI_REST": raw})
