"""The ingest's staging folder (``billshape-stage-*`` in the temporary directory): removed on every exit path.

An ingest stages its rows as Parquet in a folder of its own (about 53 MB per 2 million rows) before pricing
them in the engine. :func:`stage_folder` removes it when the ingest returns, raises, or is stopped by SIGINT,
SIGTERM or SIGHUP (in the main thread, a handler turns the signal into an exception, the folder and the
transaction are cleaned up, then the signal's previous handling resumes: a default SIGTERM still ends the
process with that signal). SIGKILL (or a power cut) cannot be caught: the folder stays, with the owner file
(``owner.json``: process id and host) written when it was made, and the next ingest removes
(:func:`remove_stale`) every staging folder whose owner process on this host is gone, and any staging folder
older than :data:`STALE_AFTER_S` that has no readable owner file or belongs to another host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

PREFIX = "billshape-stage-"
OWNER_FILE = "owner.json"
#: a staging folder with no readable owner (or another host's) is stale after this long [s]: a day, longer
#: than any ingest of one machine's logs takes (236,000 rows/s: 20 billion rows)
STALE_AFTER_S = 24 * 3600
#: the signals that stop an ingest cleanly (where the platform has them)
SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP")) if s is not None)


def _host() -> str:
    return socket.gethostname()


class StopSignal(KeyboardInterrupt):
    """A signal stopped the ingest (raised by the handler :func:`stage_folder` installs; a KeyboardInterrupt, so
    that a shell reports an interrupted run, as for Ctrl-C)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by signal {signum}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process (or a pid that is not one)
        return True
    return True


def _stale(path: str, now: float) -> bool:
    try:
        age = now - os.stat(path).st_mtime
        with open(os.path.join(path, OWNER_FILE), encoding="utf-8") as f:
            owner = json.load(f)
        pid, host = int(owner["pid"]), str(owner["host"])
    except FileNotFoundError:
        return os.path.isdir(path) and age > STALE_AFTER_S  # no owner yet: a folder being made, or a very old one
    except (OSError, ValueError, KeyError, TypeError):
        return age > STALE_AFTER_S
    if host != _host():  # a temporary directory shared between machines: another host's pid says nothing here
        return age > STALE_AFTER_S
    return pid != os.getpid() and not _alive(pid)


def remove_stale(root: str | None = None) -> list[str]:
    """Remove the staging folders under ``root`` (default: the temporary directory) that no live ingest owns;
    returns their paths. Only this user's folders are considered."""
    root = root or tempfile.gettempdir()
    now = time.time()
    removed = []
    try:
        names = [n for n in os.listdir(root) if n.startswith(PREFIX)]
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for name in names:
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not os.path.isdir(path) or os.path.islink(path) or (uid is not None and st.st_uid != uid):
            continue
        if _stale(path, now):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
                removed.append(path)
    return removed


@contextlib.contextmanager
def stage_folder():
    """A new staging folder (its path), removed when the block ends however it ends; stale ones removed first.

    In the main thread, SIGTERM, SIGINT and SIGHUP (those not ignored) stop the block: whatever exception reaches
    here after one of them (the engine may turn it into its own, e.g. DuckDB's "Query interrupted") is reported as
    the signal, once the folder is gone and the previous handlers are back. A query that does not check for
    interrupts runs to its end first; if the block then ends normally (an ingest that committed), the signal is
    still honoured when it ends."""
    remove_stale()
    path = tempfile.mkdtemp(prefix=PREFIX)
    previous: dict[int, object] = {}
    stopped: list[int] = []

    def handler(signum, frame):
        stopped.append(signum)
        raise StopSignal(signum)

    try:
        with open(os.path.join(path, OWNER_FILE), "w", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "host": _host(), "created": time.time()}, f)
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                old = signal.getsignal(sig)
                if old in (signal.SIG_IGN, None):  # ignored (e.g. under nohup): leave it so
                    continue
                previous[sig] = old
                signal.signal(sig, handler)
        try:
            yield path
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        if stopped:  # the engine swallowed the handler's exception and the block ran to its end: stop now
            raise StopSignal(stopped[0])
    except BaseException:
        if not stopped:
            raise
        shutil.rmtree(path, ignore_errors=True)
        # resume the signal's previous handling: the default action ends the process with that signal (SIGTERM:
        # exit status 143, as if never caught); Python's Ctrl-C handler and other handlers see an interrupt
        signum = stopped[0]
        old = previous.get(signum)
        if old is signal.SIG_DFL:
            signal.raise_signal(signum)
        elif callable(old) and old is not signal.default_int_handler:
            old(signum, None)
        raise StopSignal(signum) from None
    finally:
        shutil.rmtree(path, ignore_errors=True)
