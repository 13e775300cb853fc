"""Promotion on a running server: the admin routes, the engine swap in the background with the
old engine serving until then, and every worker following the pointer file."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import ADMIN_KEY, NOTE, USER_KEY, FakeEngine
from tests.training.tiny_pack import build_tiny_pack


@pytest.fixture(scope="module")
def tiny_pack(kb: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "tiny"
    build_tiny_pack(kb, out)
    return out


def _versioned(settings: Any, kb: Any) -> Any:
    """An engine factory like the real one: it loads whatever pack is promoted now."""
    from clinicode.models.pack_registry import current_name

    def factory() -> FakeEngine:
        engine = FakeEngine(kb=kb)
        engine.info = engine.info.model_copy(update={"version": current_name(settings)})
        return engine

    return factory


@pytest.fixture
def packs_settings(settings: Any, tiny_pack: Path) -> Any:
    for name in ("default", "new"):
        shutil.copytree(tiny_pack, settings.packs_dir / name)
    return settings


def _app(settings: Any, kb: Any) -> Any:
    from clinicode.serve.app import create_app
    from clinicode.serve.pack_watch import PackWatcher

    app = create_app(settings, engine_factory=_versioned(settings, kb))
    svc = app.state.service
    svc.watcher = PackWatcher(settings, svc.holder, check_s=0.0)
    return app


@pytest.fixture
def two_workers(packs_settings: Any, kb: Any) -> Iterator[tuple[Any, Any]]:
    from fastapi.testclient import TestClient

    with TestClient(_app(packs_settings, kb)) as a, TestClient(_app(packs_settings, kb)) as b:
        yield a, b


def _version(client: Any) -> str:
    r = client.post(
        "/v1/suggest", json={"text": NOTE, "setting": "outpatient"}, headers={"X-API-Key": USER_KEY}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["model"]["version"])


def _wait_for(client: Any, version: str) -> None:
    deadline = time.monotonic() + 20
    while _version(client) != version:
        assert time.monotonic() < deadline, f"never switched to {version}"
        time.sleep(0.05)


def test_promote_switches_every_worker_and_rollback(two_workers: tuple[Any, Any]) -> None:
    a, b = two_workers
    admin = {"X-API-Key": ADMIN_KEY}
    assert _version(a) == "default" and _version(b) == "default"
    r = a.post("/v1/admin/packs/promote", json={"pack": "new"}, headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["pack"] == "new"
    _wait_for(a, "new")
    _wait_for(b, "new")  # the other worker saw the pointer change on its own
    listing = a.get("/v1/admin/packs", headers=admin).json()
    assert listing["promoted"] == "new" and listing["serving_version"] == "new"
    assert {p["name"] for p in listing["packs"]} == {"default", "new"}
    r = b.post("/v1/admin/packs/rollback", headers=admin)
    assert r.status_code == 202 and r.json()["pack"] == "default"
    _wait_for(a, "default")
    _wait_for(b, "default")


def test_promotion_is_refused_clearly(two_workers: tuple[Any, Any], packs_settings: Any) -> None:
    a, _ = two_workers
    r = a.post("/v1/admin/packs/promote", json={"pack": "new"}, headers={"X-API-Key": USER_KEY})
    assert r.status_code == 403 and "admin key" in r.json()["detail"]
    admin = {"X-API-Key": ADMIN_KEY}
    r = a.post("/v1/admin/packs/promote", json={"pack": "missing"}, headers=admin)
    assert r.status_code == 404 and "no pack named 'missing'" in r.json()["detail"]
    r = a.post("/v1/admin/packs/promote", json={"pack": "../etc"}, headers=admin)
    assert r.status_code == 422
    r = a.post("/v1/admin/packs/rollback", headers=admin)
    assert r.status_code == 409 and "promote one first" in r.json()["detail"]
    (packs_settings.packs_dir / "new" / "prior.json").write_text("{}")
    r = a.post("/v1/admin/packs/promote", json={"pack": "new"}, headers=admin)
    assert r.status_code == 422 and "does not match its hash" in r.json()["detail"]
    assert _version(a) == "default"


def test_model_dir_pins_the_pack(packs_settings: Any, kb: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    pinned = packs_settings.model_copy(update={"model_dir": tmp_path / "pinned"})
    with TestClient(_app(pinned, kb)) as c:
        r = c.post(
            "/v1/admin/packs/promote", json={"pack": "new"}, headers={"X-API-Key": ADMIN_KEY}
        )
    assert r.status_code == 409 and "CLINICODE_MODEL_DIR" in r.json()["detail"]


def test_reload_keeps_the_old_engine_serving_until_the_new_one_is_ready() -> None:
    from clinicode.serve.engine_holder import EngineHolder

    old, new = FakeEngine(), FakeEngine()
    release = threading.Event()
    engines = iter([old, new])

    def factory() -> FakeEngine:
        engine = next(engines)
        if engine is new:
            release.wait(10)
        return engine

    holder = EngineHolder(factory, wait_s=5, concurrency=1)
    assert holder.get() is old
    assert holder.reload() is True
    assert holder.reload() is False  # one reload at a time
    for _ in range(20):  # the load is under way: requests still get the old engine
        assert holder.get() is old
    release.set()
    holder.wait_reload(10)
    assert holder.get() is new and holder.reloads == 1


def test_a_failed_reload_keeps_the_old_engine() -> None:
    from clinicode.serve.engine_holder import EngineHolder

    old = FakeEngine()
    calls = {"n": 0}

    def factory() -> FakeEngine:
        calls["n"] += 1
        if calls["n"] > 1:
            raise FileNotFoundError("no pack")
        return old

    holder = EngineHolder(factory, wait_s=5, concurrency=1)
    assert holder.get() is old
    holder.reload()
    holder.wait_reload(10)
    assert holder.get() is old and holder.reload_error is not None
    assert "no pack" in holder.reload_error
