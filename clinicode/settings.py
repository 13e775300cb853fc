"""One settings object for the CLI and the service, read from ``CLINICODE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "clinicode"


class Settings(BaseSettings):
    """Service and CLI settings. Secrets (API keys) have no defaults."""

    model_config = SettingsConfigDict(env_prefix="CLINICODE_", env_file=None, extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    model_dir: Path | None = None
    database_url: str | None = None
    api_keys: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_text_chars: int = 200_000
    max_body_bytes: int = 1_000_000
    max_batch: int = 100
    max_top_k: int = 200
    log_level: str = "info"
    # Service (clinicode.serve): keys that may also export feedback (note text), worker count,
    # the larger body limit of /v1/suggest/batch, and how many engine calls run at once per worker.
    admin_api_keys: SecretStr | None = None
    workers: int = Field(default=1, ge=1, le=64)
    max_batch_body_bytes: int = 25_000_000
    engine_concurrency: int = Field(default=1, ge=1, le=64)
    model_load_timeout_s: float = 60.0
    # Stored note text (the feedback database): days to keep it before the purge blanks it
    # (``clinicode feedback purge``; the server also purges hourly); None keeps it.
    note_retention_days: int | None = Field(default=None, ge=0)
    # Integrity (clinicode.integrity): the key that seals caches (default under the data dir),
    # the key that signs and checks model packs, and whether unsigned packs are refused.
    integrity_key_file: Path | None = None
    pack_signing_key_file: Path | None = None
    require_signed_packs: bool = False
    # Load shedding (clinicode.serve): each request's deadline (past it: 503 with Retry-After,
    # and the engine stops at its next stage), how many engine calls may wait per worker
    # beyond the ``engine_concurrency`` running (more: 503 at once), per-key rate limits
    # (requests per minute on /v1 routes, 0 = none, with a burst allowance; over it: 429),
    # and the Retry-After seconds those answers carry.
    request_deadline_s: float = Field(default=20.0, gt=0, le=3600)
    batch_deadline_s: float = Field(default=120.0, gt=0, le=3600)
    max_queue: int = Field(default=64, ge=0, le=10_000)
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_burst: int = Field(default=0, ge=0)
    retry_after_s: int = Field(default=2, ge=1, le=3600)
    # A request whose estimated wait (the work queued ahead of it times the recent time per
    # note) would pass this many seconds is refused at once with 503 + Retry-After rather
    # than kept waiting past a client's patience.
    max_wait_s: float = Field(default=10.0, gt=0, le=3600)
    # Where the service runs engine calls: "process" (``engine_concurrency`` child processes
    # per worker, so the worker's event loop never waits for CPU work; serve/engine_process.py)
    # or "thread" (threads of the worker process). A child not stopped this many seconds past
    # its deadline is killed and replaced; children run at this niceness above the worker's.
    engine_isolation: Literal["process", "thread"] = "process"
    engine_kill_grace_s: float = Field(default=5.0, gt=0, le=3600)
    engine_nice: int = Field(default=5, ge=0, le=19)
    # How long an engine thread may hold the GIL before the event loop gets a turn (Python's
    # default is 5 ms; each network read or write of the loop may wait that long).
    gil_switch_interval_ms: float = Field(default=1.0, gt=0, le=100)
    # How long an idle keep-alive connection stays open (uvicorn's 5 s default closes
    # connections under load just as clients reuse them: they see a reset, not a 503).
    keep_alive_s: int = Field(default=30, ge=1, le=3600)
    # Official code sets (``clinicode codes fetch``): whether ``clinicode setup`` tries to
    # download the missing ones, its per-request timeout, and another release catalogue.
    fetch_on_setup: bool = True
    fetch_timeout_s: float = Field(default=10.0, gt=0, le=600)
    releases_file: Path | None = None

    @property
    def kb_path(self) -> Path:
        return self.data_dir / "kb.sqlite"

    @property
    def integrity_key_path(self) -> Path:
        """The key sealing caches: outside the cache folders it protects."""
        return self.integrity_key_file or self.data_dir / "integrity.key"

    @property
    def downloads_dir(self) -> Path:
        """Cache of downloaded official releases, one folder per fiscal year."""
        return self.data_dir / "downloads"

    @property
    def packs_dir(self) -> Path:
        return self.data_dir / "packs"

    @property
    def default_pack_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.packs_dir / "default"

    @property
    def api_keys_file(self) -> Path:
        """Hashed API keys created by ``clinicode serve`` / ``clinicode keys create``."""
        return self.data_dir / "api_keys.json"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'feedback.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
