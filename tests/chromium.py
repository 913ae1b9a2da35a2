"""Debian's headless Chromium for the browser tests (the ops console, the demo
chat page): never downloaded (Selenium Manager offline), failing loudly when
the package is missing.

Chromium refuses some ports outright (``ERR_UNSAFE_PORT``: 10080 among them,
its NAT-slipstreaming list), so a page on such a port shows an error page and
no element. The end-to-end sandbox's ports come from an offset (the ops port
is 8080 + offset: 10080 at CI's offset 2000), so a test names the ports it
serves on in ``allowed_ports``, and Chromium is told to allow them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@contextmanager
def chromium(*, window: str, allowed_ports: Iterable[int] = ()) -> Iterator[webdriver.Chrome]:
    """A headless Chromium (``window`` as ``"W,H"`` pixels, Spanish), quit on exit."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            "the browser tests need Debian's chromium and chromedriver; missing: "
            f"{', '.join(missing)} (apt-get install chromium chromium-driver)"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={window}", "--lang=es-CO"):  # fmt: skip
        options.add_argument(arg)
    ports = sorted(set(allowed_ports))
    if ports:
        options.add_argument("--explicitly-allowed-ports=" + ",".join(map(str, ports)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download anything
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    try:
        yield driver
    finally:
        driver.quit()


# A page that redraws (the desktop's script panel on every render) replaces an
# element between finding it and reading it: "not yet", as selenium's own
# text_to_be_present_in_element takes it, not a failure.
REDRAWN = (NoSuchElementException, StaleElementReferenceException)


def wait_for(
    driver: WebDriver, condition: Callable[[WebDriver], T], message: str, timeout: float
) -> T:
    """Poll ``condition(driver)`` until it returns a truthy value; return that value.

    The browser tests' only wait (``tests/unit/test_browser_waits.py`` checks that
    no test builds its own ``WebDriverWait``): an element the page replaced or
    removed between finding and reading it (:data:`REDRAWN`) is "not yet", not a
    failure. A bare ``WebDriverWait`` ignores only ``NoSuchElementException``, so
    the desktop's script panel, redrawn while a test read its node, failed stop
    21's CI with ``StaleElementReferenceException``.
    Raises selenium's ``TimeoutException`` with ``message`` after ``timeout`` seconds.
    """
    return WebDriverWait(driver, timeout, ignored_exceptions=REDRAWN).until(condition, message)


def attribute(driver: WebDriver, selector: str, name: str, timeout: float) -> str | None:
    """The attribute ``name`` of the first element matching ``selector``, read afresh.

    Finds and reads in one poll of :func:`wait_for`, so a redraw between the two
    is retried; waits up to ``timeout`` seconds for the element to exist.
    """

    def read(d: WebDriver) -> list[str | None]:
        found = d.find_elements(By.CSS_SELECTOR, selector)
        return [found[0].get_attribute(name)] if found else []

    return wait_for(driver, read, f"{selector} never appeared", timeout)[0]


def wait_text(driver: WebDriver, selector: str, text: str, timeout: float) -> None:
    """Wait until an element matching ``selector`` shows ``text`` (a substring).

    Raises ``ValueError`` for an empty ``text``: every element "contains" the
    empty string, so such a wait passes at once and checks nothing (it let
    the 409 test of the desktop's script read the message before the click
    was answered). Wait for a shown message with :func:`wait_shown`.
    Raises selenium's ``TimeoutException`` after ``timeout`` seconds.
    """
    if not text:
        raise ValueError(f"wait_text({selector!r}, '') cannot fail: use wait_shown")
    wait_for(
        driver,
        lambda d: any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, selector)),
        f"{selector} never showed {text!r}",
        timeout,
    )


def wait_shown(driver: WebDriver, selector: str, timeout: float) -> str:
    """Wait until an element matching ``selector`` is displayed with some text; return the text.

    Raises selenium's ``TimeoutException`` after ``timeout`` seconds.
    """

    def shown(d: WebDriver) -> str | bool:
        for element in d.find_elements(By.CSS_SELECTOR, selector):
            if element.is_displayed() and element.text.strip():
                return str(element.text)
        return False

    return str(wait_for(driver, shown, f"{selector} never shown with a text", timeout))
