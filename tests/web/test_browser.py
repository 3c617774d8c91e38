"""A person in a real (headless) Chromium: log in, switch language, see the dashboard.

Runs when a Chromium is found (Debian's /usr/bin/chromium, or COMPUTELEASE_CHROMIUM). CI sets
COMPUTELEASE_REQUIRE_BROWSER=1, so there a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from computelease import migrate
from computelease.app import create_app
from computelease.auth import service
from computelease.auth.core import Role
from computelease.config import Settings
from computelease.contracts.models import Customer, Segment
from computelease.db import Database

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("COMPUTELEASE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "browser-password-1"


def _chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM}: install Debian's chromium package to run browser tests"
    if os.environ.get("COMPUTELEASE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("browser") / "web.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    with db.transaction("test") as s:
        s.add(Customer(name="浏览器测试客户", segment=Segment.model_maker, credit_limit="555000000.00"))
        service.create_user(s, username="operator", password=PASSWORD, role=Role.operator)
    settings = Settings(database_url=db.url, secret_key="b" * 40, default_locale="en")
    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(settings, db), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def test_log_in_switch_language_and_see_the_dashboard(server: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(locale="en-US")
    page.goto(f"{server}/")
    assert page.url.startswith(f"{server}/login")

    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "wrong-password-0")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "Unknown username or wrong password."

    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("[data-figure=gpus_in_service]").inner_text() == "0"  # a fleet not built yet
    # The chart is drawn by the Plotly bundle served from the installed package.
    page.wait_for_selector("#trend .main-svg", timeout=15000)

    page.click("a[data-lang=zh_CN]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "总览"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "运行中 GPU" in page.content()
    page.screenshot(path=str(tmp_path / "dashboard-zh.png"), full_page=True)
    page.click("nav.main a[href='/customers']")
    page.wait_for_load_state()
    assert "浏览器测试客户" in page.content() and "¥555,000,000.00" in page.content()

    page.click("a[data-lang=en]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Customers"

    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{server}/login")
    page.goto(f"{server}/customers")
    assert page.url.startswith(f"{server}/login")
    page.close()
