"""The e-mail a message becomes, and which addresses the outbox takes."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from types import ModuleType

import pytest

from ivr import mail
from ivr.mail import mask_address, message
from ivr.mail.message import InvalidAddress, compose, domain_of, new_message_id, require_address

AT = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)


def test_the_message_carries_its_headers_and_spanish_text_in_utf8() -> None:
    message = compose(
        sender="Línea de citas <citas@example.org>", to="ana@example.org",
        subject="Respuesta a su caso n.º 0000013", text="Señora Ana: su cita está lista.",
        message_id="<x1@example.org>", date=AT,
    )  # fmt: skip

    parsed = message_from_bytes(message.as_bytes(), policy=default)
    assert parsed["Subject"] == "Respuesta a su caso n.º 0000013"
    assert parsed["From"] == "Línea de citas <citas@example.org>"
    assert parsed["Message-ID"] == "<x1@example.org>"
    assert parsed["Date"].datetime == AT
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().strip() == "Señora Ana: su cita está lista."


def test_html_goes_as_the_alternative_after_the_plain_text() -> None:
    message = compose(sender="citas@example.org", to="ana@example.org", subject="s", text="texto",
                      html="<p>texto</p>", message_id="<x@example.org>", date=AT)  # fmt: skip

    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_a_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        compose(sender="citas@example.org", to="a@example.org", subject="s", text="t",
                message_id="<x@example.org>", date=datetime(2026, 1, 1))  # fmt: skip


def test_message_ids_are_unique_and_in_the_senders_domain() -> None:
    ids = {new_message_id("Línea <citas@eps.example.co>") for _ in range(50)}

    assert len(ids) == 50
    assert all(i.startswith("<") and i.endswith("@eps.example.co>") for i in ids)
    assert domain_of("sin dominio") == "localhost"


@pytest.mark.parametrize(
    "address",
    ["ana@example.org", "Ana Pérez <ana.perez@example.org>", "a+caso@sub.example.co",
     '"Pérez, Ana" <ana@example.org>'],
)  # fmt: skip
def test_one_address_is_taken(address: str) -> None:
    assert require_address(address) == address


@pytest.mark.parametrize(
    "address",
    ["", "ana", "ana@", "@example.org", "ana@example", "ana @example.org",
     "ana@example.org, luis@example.org", "ana@.example.org", "ana@example.org."],
)  # fmt: skip
def test_anything_but_one_address_is_refused(address: str) -> None:
    with pytest.raises(InvalidAddress, match="no es una dirección de correo"):
        require_address(address)


@pytest.mark.parametrize(
    ("address", "masked"),
    [("ana.perez@example.org", "a***@example.org"), ("x@y.co", "x***@y.co"), ("", "***")],
)
def test_addresses_are_masked_in_logs(address: str, masked: str) -> None:
    assert mask_address(address) == masked


@pytest.mark.parametrize("module", [mail, message])
def test_the_module_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted >= 2 and result.failed == 0
