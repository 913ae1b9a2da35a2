"""The pure parts of the chat line of ``ivr bench`` (``ivr.bench.chat``): the contacts
and their directory, the pace, the script, and a chat step's figures and stop rule."""

from __future__ import annotations

import asyncio
import random
from datetime import date
from pathlib import Path

import phonenumbers
import pytest

from ivr.bench.chat import (
    FIRST_PHONE,
    ChatMove,
    ChatOutcome,
    contact_phones,
    contact_script,
    contacts_needed,
    matches,
    offered_rate,
    rounds_for,
    start_offsets,
    wa_id,
    write_config,
)
from ivr.bench.lines import ALL_LINES, CHAT, LINES
from ivr.bench.stats import ProcessUsage, StepResult, next_step, per_cpu_second, summarize_line
from ivr.chat.tester import BotMessage
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.reference import load_reference
from ivr.settings import DEFAULT_CONFIG_DIR

# -- contacts -----------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 640, 5000])
def test_contact_phones_are_distinct_colombian_mobiles(count: int) -> None:
    phones = contact_phones(count)
    assert len(phones) == count == len(set(phones))
    for phone in phones[:3] + phones[-3:]:
        parsed = phonenumbers.parse(phone, "CO")
        assert phonenumbers.is_valid_number(parsed), phone
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        assert wa_id(phone) == f"57{phone}"


def test_contact_phones_refuse_to_leave_the_block_and_negative_counts() -> None:
    with pytest.raises(ValueError, match="block"):
        contact_phones(10**7 - (FIRST_PHONE - 3000000000) + 1)
    with pytest.raises(ValueError):
        contact_phones(-1)


def test_the_generated_directory_finds_every_contact_and_keeps_the_demo(tmp_path: Path) -> None:
    phones = contact_phones(25)
    target = write_config(DEFAULT_CONFIG_DIR, tmp_path / "config", phones)
    citas = target / "citas"
    reference = load_reference(citas)
    directory = YamlAffiliateDirectory.load(
        citas / "affiliates.yaml", date(2026, 11, 30), sites=reference.sites
    )

    async def look(phone: str) -> object:
        return await directory.by_phone(phone)

    for phone in (phones[0], phones[12], phones[-1]):
        found = asyncio.run(look(phone))
        assert found is not None and getattr(found, "site_id", None) == "norte", phone
    ana = asyncio.run(look("3001234567"))
    assert ana is not None  # the demo entries stay
    assert (target / "flows").is_dir()


def test_the_generated_directory_refuses_a_number_already_there(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already"):
        write_config(DEFAULT_CONFIG_DIR, tmp_path / "config", ["3001234567"])


# -- pace and size -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hold", "interval", "moves", "rounds"),
    [(0.0, 2.0, 4, 1), (8.0, 2.0, 4, 1), (8.1, 2.0, 4, 2), (15.0, 2.0, 4, 2), (60.0, 1.0, 4, 15)],
)
def test_rounds_last_the_hold(hold: float, interval: float, moves: int, rounds: int) -> None:
    assert rounds_for(hold, interval, moves) == rounds


def test_contacts_needed_counts_one_per_conversation_up_to_the_cap() -> None:
    assert contacts_needed([10, 40, 80], max_n=640, rounds=1) == 131
    assert contacts_needed([10, 40, 80], max_n=40, rounds=2) == 101
    assert contacts_needed([10], max_n=5, rounds=3, warmup=2) == 2


@pytest.mark.parametrize("n", [1, 7, 100])
@pytest.mark.parametrize("interval", [0.5, 2.0])
def test_start_offsets_spread_within_one_interval_and_repeat_with_the_seed(
    n: int, interval: float
) -> None:
    first = start_offsets(n, interval, random.Random(n))
    assert first == start_offsets(n, interval, random.Random(n))
    assert len(first) == n and all(0.0 <= x < interval for x in first)


def test_offered_rate() -> None:
    assert offered_rate(40, 2.0) == 20.0
    assert offered_rate(1, 0.5) == 2.0
    assert offered_rate(5, 0.0) == 0.0


# -- the script ----------------------------------------------------------------------


def test_the_script_greets_then_picks_and_every_expect_is_a_pattern() -> None:
    script = contact_script()
    assert [m.pick for m in script] == [False, True, True, True]
    assert script[0].send == "Hola"
    assert all(m.expect for m in script)


def menu(body: str, *titles: str) -> BotMessage:
    payload = {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": body},
            "action": {
                "button": "Ver opciones",
                "sections": [
                    {
                        "title": "x",
                        "rows": [{"id": str(k), "title": t} for k, t in enumerate(titles)],
                    }
                ],
            },
        },
    }
    return BotMessage.from_payload(0, payload)


def test_expects_match_body_or_option_titles_ignoring_case() -> None:
    main = menu("¿Qué desea hacer?", "Pedir una cita", "Mis citas")
    assert matches(main, contact_script()[0].expect)
    assert matches(main, "MIS CITAS")
    assert not matches(main, "medicina general")
    assert matches(main, ChatMove("x", ".").expect)


# -- a chat step's figures -----------------------------------------------------------


def chat_step(n: int, placed: int, failed: int, **kw: object) -> StepResult:
    return StepResult(
        line=CHAT.name,
        concurrency=n,
        placed=placed,
        completed=placed - failed,
        failed=failed,
        duration_s=10.0,
        rate_cps=offered_rate(n, 2.0),
        max_concurrent_seen=n,
        **kw,  # type: ignore[arg-type]
    )


def test_chat_step_summary_has_rate_and_messages_per_cpu_second() -> None:
    s = chat_step(
        10,
        40,
        0,
        response_ms=[100.0, 200.0],
        usage={
            "controller": ProcessUsage(cpu_s=2.0, rss_peak_mb=90.0, window_s=10.0),
            "simulator": ProcessUsage(cpu_s=0.4, rss_peak_mb=60.0, window_s=10.0),
        },
        idle_ms_per_s={"controller": 0.0},
        achieved_rate=3.5,
    ).summary()
    assert s["line"] == "chat" and s["rate_cps"] == 5.0
    assert s["achieved_per_s"] == 3.5
    assert s["controller_cpu_ms_per_call"] == 50.0  # 2 s over 40 messages
    assert s["controller_per_cpu_s"] == 20.0
    assert s["simulator_cpu_ms_per_call"] == 10.0 and s["sipp_cpu_ms_per_call"] is None
    assert s["response_p50_ms"] == 150.0


def test_per_cpu_second() -> None:
    assert per_cpu_second(4.0) == 250.0
    assert per_cpu_second(0.0) is None
    assert per_cpu_second(None) is None


@pytest.mark.parametrize(
    ("failed", "p99", "passed"),
    [(0, 100.0, True), (2, 100.0, True), (3, 100.0, False), (0, 1000.0, True), (0, 1001.0, False)],
)
def test_a_chat_step_fails_on_lost_replies_or_a_slow_p99(
    failed: int, p99: float, passed: bool
) -> None:
    s = chat_step(10, 40, failed, response_ms=[p99], max_response_p99_ms=1000.0)
    assert s.passed is passed


def test_chat_stepping_stops_after_the_first_failed_step() -> None:
    done = [chat_step(10, 40, 0), chat_step(40, 160, 40)]
    assert next_step([10, 40, 80], done[:1], 640) == 40
    assert next_step([10, 40, 80], done, 640) is None
    summary = summarize_line("chat", CHAT.title, done)
    assert summary.capacity == 10 and not summary.capped


def test_chat_outcome_counts_failures_and_rate() -> None:
    outcome = ChatOutcome(planned=8, first_sent=100.0, last_answer=104.0, answered=6)
    outcome.fail("no_reply")
    outcome.fail("not_sent", 0)
    outcome.fail("not_sent", 1)
    assert outcome.failures == {"no_reply": 1, "not_sent": 1}
    assert outcome.achieved_rate == 1.5
    assert ChatOutcome().achieved_rate == 0.0


def test_the_chat_line_is_last_and_has_no_sipp_caller() -> None:
    assert ALL_LINES[-1] == "chat" and "chat" not in LINES
    assert CHAT.uses_controller and not CHAT.steps


# -- one step against a stand-in product (loopback HTTP, the real simulator) ----------


async def _step_against(reply: str | None, contacts: list[list[str]]) -> ChatOutcome:
    """Run a two-message script against a product that answers each message with
    ``reply`` (None: stays silent), sent through the simulator's messages endpoint."""
    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from ivr.bench.chat import BenchSimulator, run_step

    simulator = BenchSimulator(app_secret="s", statuses=())
    await simulator.start()
    session = aiohttp.ClientSession()
    tasks: set[asyncio.Task[None]] = set()

    async def answer(to: str) -> None:
        body = {"messaging_product": "whatsapp", "to": to, "type": "text"}
        body["text"] = {"body": reply}  # type: ignore[assignment]
        url = f"{simulator.base_url}/v25.0/{simulator.phone_number_id}/messages"
        async with session.post(url, json=body) as response:
            assert response.status == 200

    async def hook(request: web.Request) -> web.Response:
        data = await request.json()
        for change in data["entry"][0]["changes"]:
            for message in change["value"].get("messages", ()):
                if reply is not None:
                    task = asyncio.create_task(answer(message["from"]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    simulator.webhook_url = str(server.make_url("/hook"))
    script = (ChatMove("Hola", "menu"), ChatMove("1", "listo", pick=True))
    try:
        return await run_step(simulator, contacts, script, interval=0.05, reply_timeout=0.5)
    finally:
        await server.close()
        await session.close()
        await simulator.stop()


async def test_a_step_measures_every_answered_message() -> None:
    outcome = await _step_against(
        "menu listo", [["573009000001"], ["573009000002", "573009000003"]]
    )
    assert outcome.planned == 6 and outcome.sent == 6 and outcome.answered == 6
    assert len(outcome.latency_ms) == 6 and all(0 < ms < 500 for ms in outcome.latency_ms)
    assert outcome.failures == {}
    assert outcome.transcript[:2] == [">> Hola", "menu listo"]


async def test_a_silent_product_fails_the_message_and_the_rest_are_not_sent() -> None:
    outcome = await _step_against(None, [["573009000001"], ["573009000002"]])
    assert outcome.answered == 0 and outcome.sent == 2
    assert outcome.failures == {"no_reply": 2, "not_sent": 2}


async def test_a_wrong_reply_is_not_an_answer() -> None:
    outcome = await _step_against("otra cosa", [["573009000001"]])
    assert outcome.answered == 0 and len(outcome.latency_ms) == 1
    assert outcome.failures == {"unexpected_reply": 1, "not_sent": 1}
