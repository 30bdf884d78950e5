"""The background worker: keeps running due converge jobs until told to stop."""

from __future__ import annotations

from gogs_scim.background import BackgroundLoop
from gogs_scim.gogs.reconciler import ConvergeRunner


class ConvergeWorker(BackgroundLoop):
    """Polls the job queue; runs due jobs batch after batch while there are any."""

    def __init__(self, reconciler: ConvergeRunner, poll_seconds: float = 1.0) -> None:
        super().__init__("converge-worker", poll_seconds)
        self._reconciler = reconciler

    def round(self) -> bool:
        return self._reconciler.run_due() > 0
