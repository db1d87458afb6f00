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


def command(port: int, headless: bool) -> list[str]:
    """The ``streamlit run`` command line that serves the app (loopback only, no usage statistics)."""
    import sys
    from pathlib import Path

    import billshape.app

    script = Path(billshape.app.__file__).resolve().parent / "main.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true" if headless else "false",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
    ]


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
        import signal
        import subprocess
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
        proc = subprocess.Popen(cmd, env=environment(), stdout=sys.stderr if json_out else None)

        def _stop(signum, frame):  # `kill PID` of this process stops the server too
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        if json_out:
            print_json({"url": url, "port": port, "pid": proc.pid})
            sys.stdout.flush()
        else:
            console().print(f"billshape app: {url} (Ctrl-C stops it)")
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        if code not in (0, -2, -15):
            raise typer.Exit(code)
