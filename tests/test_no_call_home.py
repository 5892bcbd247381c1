"""The app's own startup reaches for no host but this one (issue 15).

Streamlit 1.67, headless and with no server or browser address chosen, asks an outside web service for the
machine's public IP at every start, to print an "External URL" (net_util.get_external_ip). Here the real server
starts with the project's .streamlit/config.toml, as `make app` and as the Docker image's CMD start it, under a
Python audit hook that records every name lookup or connection aimed at another host and refuses it, so nothing
leaves this machine even when the test fails. With the address settings taken out of the config, the same
probe records the lookup: the control that shows it would see one.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pages.app.browser import free_port, stop_server

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".streamlit" / "config.toml"
ADDRESS_SETTINGS = re.compile(r"^\s*(address|serverAddress)\s*=.*\n", re.MULTILINE)
READY = "You can now view your Streamlit app"   # printed once the startup URLs, public IP included, are known

# Streamlit's CLI in this interpreter, behind the audit hook; the first argument is the file that records attempts.
LAUNCHER = r"""
import ipaddress, sys

record = sys.argv.pop(1)

def is_this_machine(host):
    if host in (None, "", "localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified

def refuse_other_hosts(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname"):
        host = args[0]
    elif event in ("socket.connect", "socket.sendto") and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    if not is_this_machine(host):
        with open(record, "a") as f:
            f.write(f"{event} {host}\n")
        raise OSError(f"{event} to {host} refused by tests/test_no_call_home.py")

sys.addaudithook(refuse_other_hosts)
from streamlit.web.cli import main
sys.argv[0] = "streamlit"
main()
"""


def docker_cmd() -> list[str]:
    """The Dockerfile's CMD, as the image runs it."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))


STARTS = {
    "make app": ["run", "app.py"],
    "docker CMD": docker_cmd()[1:],
}


def start(args: list[str], cwd: Path, tmp: Path) -> tuple[str, list[str]]:
    """Start the server from `cwd` (whose .streamlit/config.toml it reads) until it has printed its URLs and
    answered a page and its health check; return what it printed and what it tried to reach."""
    record = tmp / "attempts.txt"
    log = tmp / "streamlit.log"
    port = free_port()
    args = [*args, f"--server.port={port}"]
    # Neither the tester's ~/.streamlit/config.toml nor STREAMLIT_* variables, which could set the addresses.
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")} | {"HOME": str(home)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(record), *args], cwd=cwd,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while READY not in log.read_text():
            assert proc.poll() is None, f"streamlit exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"streamlit did not start within 90 s:\n{log.read_text()}"
            time.sleep(0.2)
        for path in ("/", "/_stcore/health"):
            for _ in range(100):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                        assert r.status == 200
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                raise AssertionError(f"no answer on {path}:\n{log.read_text()}")
    finally:
        stop_server(proc)
    return log.read_text(), record.read_text().splitlines() if record.exists() else []


@pytest.mark.parametrize("how", STARTS)
def test_startup_reaches_no_other_host(how, tmp_path):
    output, attempts = start(STARTS[how], REPO, tmp_path)
    assert attempts == [], f"`streamlit {' '.join(STARTS[how])}` tried to reach: {attempts}"
    assert "External URL" not in output, output


@pytest.mark.parametrize("how", STARTS)
def test_without_the_address_settings_it_would_call_home(how, tmp_path):
    # The project again, linked but for its config: Streamlit reads the config beside the main script too.
    project = tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name != ".streamlit":
            (project / entry.name).symlink_to(entry)
    stripped = ADDRESS_SETTINGS.sub("", CONFIG.read_text())
    assert stripped != CONFIG.read_text(), "the config chooses no address: the first test fails"
    (project / ".streamlit" / "config.toml").write_text(stripped)
    _, attempts = start(STARTS[how], project, tmp_path)
    assert "socket.getaddrinfo checkip.amazonaws.com" in attempts, attempts
