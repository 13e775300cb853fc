"""Each worker follows the promoted pack: a cheap check of the pointer file on requests.

``clinicode packs promote`` (or ``POST /v1/admin/packs/promote``) rewrites
``packs_dir/promoted.json``. Every worker checks that file's stamp at most every ``CHECK_S``
seconds, on the requests that use the engine (as the key file is checked,
:mod:`clinicode.serve.auth`); when it changed, the worker reloads its engine in the background
(:meth:`EngineHolder.reload`) and keeps serving with the old one until the new one is ready.
With ``CLINICODE_MODEL_DIR`` set the pointer is not followed.
"""

from __future__ import annotations

import threading
import time

from clinicode.models.pack_registry import pointer_stamp
from clinicode.settings import Settings

from .engine_holder import EngineHolder

CHECK_S = 2.0


class PackWatcher:
    def __init__(self, settings: Settings, holder: EngineHolder, check_s: float = CHECK_S) -> None:
        self._settings = settings
        self._holder = holder
        self._check_s = check_s
        self._stamp = pointer_stamp(settings)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._settings.model_dir is None

    def check(self) -> bool:
        """Reload the engine when the pointer changed since the last look; True if it did."""
        if not self.enabled or time.monotonic() - self._checked < self._check_s:
            return False
        with self._lock:
            self._checked = time.monotonic()
            stamp = pointer_stamp(self._settings)
            if stamp == self._stamp:
                return False
            self._stamp = stamp
        started = self._holder.reload()
        if not started:  # a reload was under way, maybe of the older pack: look again later
            self._stamp = (-1, -1, -1)
        return started

    def now(self) -> bool:
        """Check at once (after a promotion made by this worker)."""
        self._checked = 0.0
        return self.check()
