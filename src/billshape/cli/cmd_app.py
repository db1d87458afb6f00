"""``billshape app``: start the web app (Streamlit) on 127.0.0.1."""

from __future__ import annotations

from typing import Annotated

import typer

from billshape.cli._common import JsonOpt

HELP = """Start billshape's web app on 127.0.0.1 (Streamlit): Train, Serve, Build vs buy, Size, Capacity, Route, Plan, Usage.

Opens on bria.ai's training bill (280 A100 x 14 days at $2.5/GPU-hour). Usage statistics are off and the app reaches no outside host.
--dry-run prints the URL and the command instead of starting it (with --json: one JSON object).

Example: billshape app --port 8501
"""

DEFAULT_PORT = 8501  # Streamlit's own default port


def command(port: int, headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line that serves the app (loopback only, no usage statistics).

    Streamlit always runs headless: a non-headless Streamlit asks for an e-mail address on its first run (and
    exits when it has no terminal to ask on). Without ``--headless``, ``billshape app`` opens the browser itself
    once the server answers. ``headless`` is kept for callers; it no longer changes the command.
    """
    import sys
    from pathlib import Path

    import billshape

    # the app's entry script, found by path: the CLI starts the app in its own process and never imports it
    script = Path(billshape.__file__).resolve().parent / "app" / "main.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
    ]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM if ``billshape app`` dies, even by SIGKILL (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def serve(cmd: list[str], env: dict[str, str], url: str, *, stdout=None, open_browser: bool = False,
          on_start=None) -> int:
    """Run the Streamlit server as a child in its own process group and return its exit code.

    SIGTERM, SIGHUP and SIGINT of this process stop the whole group (Streamlit and anything it started), so the
    server never outlives ``billshape app``; on Linux the child also dies with this process if it is SIGKILLed.
    """
    import signal
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, _stop)
    if on_start is not None:
        on_start(proc)
    if open_browser:
        threading.Thread(target=_open_when_up, args=(url, proc), daemon=True).start()
    try:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            _stop_group(proc)
            return proc.returncode
    finally:
        if proc.poll() is None:  # any other way out of here
            _stop_group(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_group(proc) -> None:
    """SIGTERM to the server's process group, SIGKILL after 10 s."""
    import os
    import signal
    import subprocess

    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _open_when_up(url: str, proc, timeout_s: float = 60) -> None:
    """Open ``url`` in a browser once Streamlit's health check answers (what a non-headless Streamlit did)."""
    import time
    import urllib.request
    import webbrowser

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    webbrowser.open(url)
                    return
        except OSError:
            pass
        time.sleep(0.3)


def environment() -> dict[str, str]:
    """The child's environment: usage statistics off, and ``billshape`` importable from the script."""
    import os
    from pathlib import Path

    import billshape

    env = dict(os.environ)
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    src = str(Path(billshape.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def register(app: typer.Typer) -> None:
    @app.command("app", help=HELP)
    def run_app(
        port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (1-65535).")] = DEFAULT_PORT,
        headless: Annotated[bool, typer.Option("--headless", help="Do not open a browser window.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the URL and the command; start nothing.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        import sys

        from billshape.cli._common import console, print_json
        from billshape.errors import BillshapeInputError

        if not 1 <= port <= 65535:
            raise BillshapeInputError("--port", port, "an integer in [1, 65535]")
        url = f"http://127.0.0.1:{port}"
        cmd = command(port, headless or json_out)
        if dry_run:
            if json_out:
                print_json({"url": url, "port": port, "command": cmd})
            else:
                console().print(f"would serve billshape's app at {url}\n" + " ".join(cmd))
            return
        # With --json, stdout carries exactly one JSON object: Streamlit's own messages go to stderr.
        def started(proc) -> None:
            if json_out:
                print_json({"url": url, "port": port, "pid": proc.pid})
                sys.stdout.flush()
            else:
                console().print(f"billshape app: {url} (Ctrl-C stops it)")

        code = serve(cmd, environment(), url, stdout=sys.stderr if json_out else None,
                     open_browser=not (headless or json_out), on_start=started)
        if code not in (0, -2, -15):
            raise typer.Exit(code)
