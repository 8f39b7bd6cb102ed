"""The installed model-registry-server package: its binary and local mode, with the official client.

Run by python/test.sh in a fresh venv holding only the package, installed from the checkout by
`pip install ./python` as the README says, and e2e/requirements-v1.txt; never against the source
tree (the tests check where the package came from and that the import comes from site-packages).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import textwrap
import time
import urllib.parse
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

import model_registry_server
from model_registry_server import LocalServer, LocalServerError, binary, default_data_dir, local

# The client builds an ssl.SSLContext per request even over http; loading the CA store costs
# ~85 ms each time. Only http to 127.0.0.1 here.
os.environ["SSL_CERT_FILE"] = os.devnull
os.environ["SSL_CERT_DIR"] = os.devnull


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return not Path("/proc").is_dir()


def gone(pid: int, port: int, within: float = 15.0) -> bool:
    """The process no longer runs and nothing listens on its port (within a few seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid) and not port_open(port):
            return True
        time.sleep(0.1)
    return False


def run_child(code: str, data_dir: Path) -> subprocess.Popen:
    """A separate Python process running `code` (with DATA_DIR set), its stdout piped."""
    return subprocess.Popen([sys.executable, "-c", f"DATA_DIR = {str(data_dir)!r}\n" + textwrap.dedent(code)],
                            stdout=subprocess.PIPE, text=True)


def test_installed_from_the_checkout_not_imported_from_it():
    # pip records where a package came from (PEP 610): the README's `pip install ./python`.
    origin = json.loads(metadata.distribution("model-registry-server").read_text("direct_url.json"))
    assert origin["url"].startswith("file://") and origin["url"].endswith("/python"), origin
    assert "dir_info" in origin and not origin["dir_info"].get("editable"), origin
    assert "site-packages" in model_registry_server.__file__
    exe = Path(binary())
    assert exe.parent == Path(sysconfig.get_path("scripts")), "the binary is in the venv's bin/"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "proxy" in r.stdout


def test_register_and_read_back_then_stopped(tmp_path):
    data = tmp_path / "my registry"
    with local(data, author="tester") as registry:
        server = registry.server
        pid, port = server.pid, server.port
        assert port_open(port)
        registry.register_model("mnist", "s3://models/mnist/v1", version="v1", version_description="digits",
                                model_format_name="onnx", model_format_version="1", metadata={"acc": 0.98})
        model = registry.get_registered_model("mnist")
        assert model is not None and model.name == "mnist" and model.owner == "tester"
        version = registry.get_model_version("mnist", "v1")
        assert version is not None and version.author == "tester" and version.description == "digits"
        assert version.custom_properties == {"acc": 0.98}
        artifact = registry.get_model_artifact("mnist", "v1")
        assert artifact is not None and artifact.uri == "s3://models/mnist/v1"
        assert artifact.model_format_name == "onnx"
        assert [m.name for m in registry.get_registered_models()] == ["mnist"]
        assert registry.ui_url == f"http://127.0.0.1:{port}/"
        page = urllib.request.urlopen(registry.ui_url, timeout=5).read().decode()
        assert ">mnist</a>" in page, "the web UI lists the model"
        assert (data / "model-registry.db").is_file(), "the SQLite file is in the chosen directory"
    assert not server.running()
    assert gone(pid, port), "the server outlived the with block"

    # The data stays: a new server on the same directory serves it.
    with local(data, author="tester") as again:
        assert again.get_model_artifact("mnist", "v1").uri == "s3://models/mnist/v1"


def test_tracking_uri_serves_mlflows_api(tmp_path):
    """`mlflow.set_registry_uri(registry.tracking_uri)` is all MLflow's client needs: what the
    Kubeflow client registered is there under MLflow's paths."""
    with local(tmp_path, author="tester") as registry:
        assert registry.tracking_uri == registry.server.url == f"http://127.0.0.1:{registry.server.port}"
        registry.register_model("mnist", "s3://models/mnist/v1", version="v1", model_format_name="onnx",
                                model_format_version="1")
        query = urllib.parse.urlencode({"name": "mnist", "version": "v1"})
        url = f"{registry.tracking_uri}/api/2.0/mlflow/model-versions/get-download-uri?{query}"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert json.loads(r.read()) == {"artifact_uri": "s3://models/mnist/v1"}


def test_plain_call_lives_until_the_process_exits(tmp_path):
    child = run_child("""
        import time, urllib.request
        from model_registry_server import local
        registry = local(DATA_DIR, author="child")
        registry.register_model("m", "s3://m", version="1", model_format_name="onnx", model_format_version="1")
        print(registry.server.pid, registry.server.port, flush=True)
        time.sleep(0.5)  # still serving after the call returned
        urllib.request.urlopen(registry.server.url + "/readyz/health", timeout=5).read()
    """, tmp_path)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0, out
    pid, port = map(int, out.split())
    assert gone(pid, port), "the server outlived the Python process that started it"
    with local(tmp_path, author="tester") as registry:
        assert registry.get_model_artifact("m", "1").uri == "s3://m"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_server_dies_with_a_killed_parent(tmp_path):
    child = run_child("""
        import time
        from model_registry_server import local
        registry = local(DATA_DIR, author="child")
        print(registry.server.pid, registry.server.port, flush=True)
        time.sleep(300)
    """, tmp_path)
    try:
        pid, port = map(int, child.stdout.readline().split())
        assert port_open(port)
    finally:
        child.send_signal(signal.SIGKILL)  # no atexit runs
        child.wait(timeout=30)
    assert gone(pid, port), "the server outlived its SIGKILLed parent"


def test_default_data_dir_is_the_users(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_data_dir() == tmp_path / "xdg" / "model-registry"
    with local(author="tester") as registry:
        assert registry.server.db_path == default_data_dir() / "model-registry.db"
        assert registry.server.db_path.is_file()


def test_a_server_that_cannot_start_reports_its_log(tmp_path):
    with pytest.raises(LocalServerError) as e:
        LocalServer(tmp_path, args=["--no-such-flag"], timeout=20).start()
    assert "exited with" in str(e.value) and "no-such-flag" in str(e.value)


def test_a_taken_port_is_an_error_not_a_hang(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LocalServerError) as e:
            local(tmp_path, port=port, author="tester", timeout=20)
    assert "exited with" in str(e.value)


def test_local_is_quiet(tmp_path, caplog, recwarn):
    # The client's warnings about a missing token and http on a port other than 80 are noise here.
    with local(tmp_path, author="tester") as registry:
        assert repr(registry).startswith("<LocalModelRegistry on <LocalServer http://127.0.0.1:")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)] == []
