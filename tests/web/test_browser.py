"""The dashboard in a real browser: headless Chromium signs in and reads why a service is cut off."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select, update
from waitress.server import create_server

from daemon.db.models import Payment, Service
from policies.desired import ServiceState
from tests.support import require
from tests.web.conftest import ADMIN_PASSWORD, Seeded

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    finally:
        server.close()
        thread.join(timeout=5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    require(Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER) is not None, "chromium and chromedriver")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_support_signs_in_and_sees_why_a_customer_is_cut_off(
    live_server: str, browser: object, seeded: Seeded, tmp_path: Path
) -> None:

    assert isinstance(browser, WebDriver)
    with seeded.sessions.begin() as s:
        s.execute(
            update(Service)
            .where(Service.id == seeded.service_id)
            .values(state=ServiceState.SUSPENDED, state_reason="invoice INV-7 unpaid 21 days")
        )

    browser.get(f"{live_server}/services/{seeded.service_id}")
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    wait = WebDriverWait(browser, 20)
    headline = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=headline]")))
    assert headline.text.startswith("Suspended since")
    assert "invoice INV-7 unpaid 21 days" in headline.text
    findings = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".finding .t")]
    assert "Service is suspended" in findings
    browser.save_screenshot(str(tmp_path / "service.png"))
    assert (tmp_path / "service.png").stat().st_size > 10_000

    browser.find_element(By.LINK_TEXT, "Customers").click()
    wait.until(expected_conditions.title_contains("Customers"))
    assert "Ada Lovelace" in browser.find_element(By.TAG_NAME, "table").text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_double_clicked_payment_records_one_payment(live_server: str, browser: object, seeded: Seeded) -> None:
    assert isinstance(browser, WebDriver)
    page = f"{live_server}/customers/{seeded.customer_id}"
    browser.get(page)
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = WebDriverWait(browser, 20)
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "amount")))
    # A second tab opened on the customer separately: its form has its own token.
    browser.switch_to.new_window("tab")
    browser.get(page)
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "amount")))
    second_tab = browser.current_window_handle
    browser.switch_to.window(browser.window_handles[0])

    browser.find_element(By.NAME, "amount").send_keys("12.50")
    button = browser.find_element(By.CSS_SELECTOR, "form.actions button")
    ActionChains(browser).double_click(button).perform()
    wait.until(expected_conditions.staleness_of(button))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
    messages = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".flash"))
    assert "12.50 USD" in messages and ("recorded" in messages or "Already recorded" in messages)

    with seeded.sessions() as s:
        assert len(s.scalars(select(Payment.id)).all()) == 1

    # That form is a separate request: submitting it records a second, deliberate payment.
    browser.switch_to.window(second_tab)
    browser.find_element(By.NAME, "amount").send_keys("1.00")
    button = browser.find_element(By.CSS_SELECTOR, "form.actions button")
    button.click()
    wait.until(expected_conditions.staleness_of(button))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
    assert "Payment of 1.00 USD recorded." in browser.page_source
    with seeded.sessions() as s:
        assert len(s.scalars(select(Payment.id)).all()) == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pages_work_under_the_content_security_policy(live_server: str, browser: object, seeded: Seeded) -> None:
    """Chromium enforces the policy: the stylesheet applies, and no page makes it refuse anything."""
    assert isinstance(browser, WebDriver)
    browser.get(f"{live_server}/login")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.TAG_NAME, "header")))
    pages = ["/", "/customers?q=Ada", f"/customers/{seeded.customer_id}", "/services", f"/services/{seeded.service_id}"]
    for path in [*pages, "/plans", "/routers"]:
        browser.get(f"{live_server}{path}")
        header = browser.find_element(By.TAG_NAME, "header")
        assert header.value_of_css_property("background-color") == "rgba(23, 32, 46, 1)", path
    # The policy is in force: a script injected into the page is refused, and Chromium says so.
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'document.title = \"pwned\"';"
        "document.body.appendChild(s);"
    )
    assert browser.title != "pwned"
    messages = [entry["message"] for entry in browser.get_log("browser")]  # type: ignore[attr-defined]
    violations = [m for m in messages if "Content Security Policy" in m]
    assert len(violations) == 1 and "script-src" in violations[0], messages
    # Signing out ends the session for good: the back button shows the sign-in page.
    browser.get(f"{live_server}/")
    browser.find_element(By.CSS_SELECTOR, "header button[type=submit]").click()
    WebDriverWait(browser, 20).until(expected_conditions.url_contains("/login"))
    browser.get(f"{live_server}/routers")
    assert "/login" in browser.current_url
