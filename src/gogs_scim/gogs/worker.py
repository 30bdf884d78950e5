"""The background worker: keeps running due converge jobs until told to stop."""

from __future__ import annotations

import logging
import threading

from gogs_scim.gogs.reconciler import ConvergeRunner

log = logging.getLogger(__name__)


class ConvergeWorker:
    """A daemon thread polling the job queue; `stop()` waits for the current batch."""

    def __init__(self, reconciler: ConvergeRunner, poll_seconds: float = 1.0) -> None:
        self._reconciler = reconciler
        self._poll = poll_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="converge-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                ran = self._reconciler.run_due()
            except Exception:
                # The store may be briefly unavailable; the next round tries again.
                log.exception("converge worker round failed")
                ran = 0
            if ran == 0:
                self._stopping.wait(self._poll)
