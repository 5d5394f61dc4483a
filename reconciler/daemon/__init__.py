"""Watch mode: keep the server equal to the manifests until stopped.

Root tasks (when one fails, all stop):

    file watcher ─┐
    advisories  ──┤
    resync timer ─┼─> trigger() ─> reconcile loop: one pass at a time; triggers arriving
    settle timer ─┤                during a pass fold into one more pass
    reconnects  ──┘
    embedded nats-server (with --embedded): its exit stops the daemon
    lease keeper ──> trigger() when this process becomes the leader
    HTTP: /healthz /readyz /metrics

Triggers only say "look again": every pass reconciles the whole set, from all manifests as
loaded again (a pass started only by advisories goes by them as last loaded: a file change
is a trigger of its own) and the streams that may have changed read again (`known.py`).
A manifest file whose new version may be half written is held back (`settle`): its last
accepted version stands until the file has been quiet for the settle period, and the
settle timer starts the pass that looks again. Signal handlers only set the stop event.

With a lease (the default), only its holder applies; the others are standbys whose passes
plan only (metrics, events and /readyz stay true). A pass applies only when a fresh read of
the lease, made after planning, shows our revision, and every single write checks the
lease's deadline first (`lease.Fenced`).

The pieces, each with one reason to change:

    triggers.py  the pending triggers, their folding, the retry backoff
    echo.py      advisories: our own change's echo, the actor of another's (pure, a clock
                 passed in)
    desired.py   manifests read, merged, held while settling; each stream's last manifest
    files.py     which directories to watch and which of their events count
    health.py    /readyz reasons and metrics from each pass, fights going on
    connection.py  what watch mode needs of JetStream; connecting until it works
    edges.py     the embedded nats-server and the HTTP endpoints
    passes.py    one pass at a time and the timers it leaves
    daemon.py    the Daemon: root tasks, connection, lease, signals
"""

from __future__ import annotations

from reconciler.daemon.connection import Connect, Connection
from reconciler.daemon.daemon import Daemon
from reconciler.daemon.echo import ACTOR_GRACE_S, OWN_ECHO_S
from reconciler.daemon.files import watch_target
from reconciler.settings import Settings

__all__ = ["ACTOR_GRACE_S", "OWN_ECHO_S", "Connect", "Connection", "Daemon", "run",
           "watch_target"]


async def run(settings: Settings) -> int:
    return await Daemon(settings).run()
