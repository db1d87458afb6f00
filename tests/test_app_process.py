"""`billshape app` as a process: it never stops at Streamlit's e-mail prompt, and its server dies with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from billshape.app import server as app_server

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _start(tmp_path, *args: str) -> tuple[subprocess.Popen, str]:
    port = app_server.free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), BROWSER="true", HOME=str(tmp_path))  # no ~/.streamlit
    env.pop("STREAMLIT_BROWSER_GATHER_USAGE_STATS", None)
    proc = subprocess.Popen([sys.executable, "-m", "billshape", "app", "--port", str(port), *args], cwd=tmp_path,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _wait(pred, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig, args", [
    (signal.SIGTERM, ("--headless",)),
    (signal.SIGINT, ()),  # not headless, no terminal: no e-mail prompt, the browser is opened by billshape (BROWSER=true)
    (signal.SIGKILL, ("--headless",)),  # Linux: PR_SET_PDEATHSIG stops the server with its parent
])
def test_app_server_dies_with_billshape_app(tmp_path, sig, args):
    if sig == signal.SIGKILL and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    proc, url = _start(tmp_path, *args)
    try:
        up = _wait(lambda: _answers(url) or proc.poll() is not None, 90)
        assert up and proc.poll() is None, f"billshape app exited: {proc.stdout.read().decode(errors='replace')[-2000:]}"
        assert _answers(url)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert _wait(lambda: not _answers(url), 20), "the Streamlit server outlived billshape app"
        out = proc.stdout.read().decode(errors="replace")
        assert "Email" not in out and "email" not in out, out[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
