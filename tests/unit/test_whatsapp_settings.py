"""The WhatsApp settings: CITAS_WHATSAPP_* variables, defaults, and secrets kept out of repr."""

from __future__ import annotations

import pytest

from ivr.settings import Settings, SettingsError

ENV = {
    "CITAS_WHATSAPP_API_BASE": "http://127.0.0.1:19000",
    "CITAS_WHATSAPP_API_VERSION": "v23.0",
    "CITAS_WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "CITAS_WHATSAPP_TOKEN": "EAAG-secret-token",
    "CITAS_WHATSAPP_APP_SECRET": "app-secret-value",
    "CITAS_WHATSAPP_VERIFY_TOKEN": "verify-token-value",
}


def test_defaults_point_at_metas_graph_api_with_nothing_secret_set() -> None:
    s = Settings.from_env({})
    assert (s.whatsapp_api_base, s.whatsapp_api_version) == ("https://graph.facebook.com", "v25.0")
    assert (s.whatsapp_token, s.whatsapp_app_secret, s.whatsapp_verify_token) == ("", "", "")
    assert s.whatsapp_phone_number_id == ""


def test_every_variable_is_read() -> None:
    s = Settings.from_env(ENV)
    assert (
        s.whatsapp_api_base,
        s.whatsapp_api_version,
        s.whatsapp_phone_number_id,
        s.whatsapp_token,
        s.whatsapp_app_secret,
        s.whatsapp_verify_token,
    ) == tuple(ENV.values())


def test_an_empty_api_base_keeps_the_default() -> None:
    assert Settings.from_env({"CITAS_WHATSAPP_API_BASE": ""}).whatsapp_api_base.startswith(
        "https://"
    )


def test_secrets_never_appear_in_repr() -> None:
    shown = repr(Settings.from_env(ENV))
    for secret in ("EAAG-secret-token", "app-secret-value", "verify-token-value"):
        assert secret not in shown
    assert "106540352242922" in shown  # not a secret: useful in a support log


@pytest.mark.parametrize("version", ["25.0", "v25", "latest", "v25.0.1", "V25.0"])
def test_a_bad_api_version_names_the_variable(version: str) -> None:
    with pytest.raises(SettingsError, match="CITAS_WHATSAPP_API_VERSION"):
        Settings.from_env({"CITAS_WHATSAPP_API_VERSION": version})
