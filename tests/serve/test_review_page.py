"""The review page in a real Chromium (Debian's, driven by Playwright): paste a note, see the
evidence highlighted and linked to codes, accept/reject/add, and find the decisions in the API.

Set CLINICODE_UPDATE_SCREENSHOT=1 to also save docs/review-page.png.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("CLINICODE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
PAGE_NOTE = (
    "CHIEF COMPLAINT: Chest pain.\n\n"
    "HISTORY OF PRESENT ILLNESS: 61-year-old woman with type 2 diabetes mellitus and long-standing\n"
    "hypertension presents with two days of intermittent chest pain and low-grade fever.\n"
    "She denies pneumonia or recent travel.\n\n"
    "ASSESSMENT AND PLAN:\n"
    "1. Chest pain, likely musculoskeletal. Troponin negative.\n"
    "2. Type 2 diabetes mellitus, continue metformin.\n"
    "3. Hypertension, well controlled on lisinopril.\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Any, engine: Any) -> Iterator[str]:
    import uvicorn

    from clinicode.serve.app import create_app

    port = _free_port()
    app = create_app(settings, engine_factory=lambda: engine)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "server did not start"
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_review_page_end_to_end(server: str, browser: Any, admin_key: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")

    # Sign in (a wrong key is refused first).
    page.fill("#key-input", "not-a-key")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#status.error")
    assert page.is_visible("#login")
    page.fill("#key-input", admin_key)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#note-text", state="visible")
    assert not page.is_visible("#login")

    # Open a file, then paste a note over it; choose the setting; suggest with Ctrl+Enter.
    page.set_input_files(
        "#file", files=[{"name": "n.txt", "mimeType": "text/plain", "buffer": b"Fever."}]
    )
    page.wait_for_function("() => document.querySelector('#note-text').value === 'Fever.'")
    page.fill("#note-text", PAGE_NOTE)
    page.select_option("#setting", "inpatient")
    page.press("#note-text", "Control+Enter")
    page.wait_for_selector("mark.ev")

    # Evidence is highlighted at the engine's offsets.
    marks = page.eval_on_selector_all("mark.ev", "ms => ms.map(m => m.textContent.toLowerCase())")
    assert marks.count("type 2 diabetes mellitus") == 2
    assert marks.count("hypertension") == 2 and marks.count("chest pain") == 3 and "fever" in marks
    struck = page.eval_on_selector_all("s.sup", "ss => ss.map(s => [s.textContent, s.title])")
    assert [t for t, _ in struck] == ["pneumonia"] and "negated mention" in struck[0][1]
    shown = page.eval_on_selector("#note-view", "v => v.textContent")
    assert shown == PAGE_NOTE  # the note is shown whole, unaltered

    # Code -> evidence: clicking I10 lights up exactly its two spans.
    page.click('li[data-code="I10"]')
    active = page.eval_on_selector_all("mark.ev.active", "ms => ms.map(m => m.textContent)")
    assert [a.lower() for a in active] == ["hypertension", "hypertension"]
    # Evidence -> code: clicking a diabetes span selects E11.9.
    page.click("mark.ev >> text=Type 2 diabetes mellitus")
    assert "selected" in (page.get_attribute('li[data-code="E11.9"]', "class") or "")

    # Accept E11.9 with the keyboard, reject R50.9 with the button, add a code by search.
    page.keyboard.press("a")
    page.wait_for_selector('li[data-code="E11.9"].accepted')
    page.click('li[data-code="R50.9"] button:has-text("Reject")')
    page.wait_for_selector('li[data-code="R50.9"].rejected')
    # Modify R07.9 with the keyboard: select it (j/k), press m, type the corrected code.
    page.click('li[data-code="R07.9"]')
    page.keyboard.press("m")
    page.keyboard.type("r07.89")
    page.keyboard.press("Enter")
    page.wait_for_selector('li[data-code="R07.9"].modified')
    page.fill("#search", "hyperlipidemia")
    page.wait_for_selector("#search-results li button")
    first = page.text_content("#search-results li .code")
    page.click("#search-results li button")
    page.wait_for_function(
        "code => document.querySelector('#final').value.includes(code)", arg=first
    )
    final = page.input_value("#final")
    assert [line.split("\t")[0] for line in final.splitlines()] == ["R07.89", "E11.9", first]
    assert not errors, errors

    if os.environ.get("CLINICODE_UPDATE_SCREENSHOT"):
        page.fill("#search", "")
        page.wait_for_function("() => !document.querySelector('#search-results li')")
        page.click('li[data-code="I10"]')
        page.evaluate("window.scrollTo(0, 0); document.querySelector('#status').textContent = ''")
        page.wait_for_timeout(600)  # let the smooth scrolling and the status toast settle
        page.screenshot(path=str(REPO / "docs" / "review-page.png"))

    # The decisions are visible through the API.
    note_id = page.text_content("#note-meta").rsplit("note ", 1)[1]
    r = httpx.get(server + "/v1/feedback/export", headers={"X-API-Key": admin_key})
    rows = {row["id"]: row for row in map(json.loads, r.text.splitlines())}
    assert rows[note_id]["text"] == PAGE_NOTE
    codes = {c["code"] for c in rows[note_id]["codes"]}
    assert codes == {"E11.9", "R07.89", first}
