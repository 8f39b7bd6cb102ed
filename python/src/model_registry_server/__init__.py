"""The model-registry server, installed by pip, and a local mode for notebooks.

    from model_registry_server import local
    registry = local()          # a model_registry.ModelRegistry on a local server

`local()` starts `model-registry proxy` on 127.0.0.1 (a free port) with an SQLite file in
`data_dir` (default: `default_data_dir()`), waits until it is ready and returns the official
client connected to it. As a context manager it stops the server on exit; otherwise the server
lives until the Python process exits. `LocalServer` is the server alone.
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LocalServer", "LocalServerError", "binary", "default_data_dir", "local"]

try:
    __version__ = metadata.version("model-registry-server")
except metadata.PackageNotFoundError:  # imported from a source tree
    __version__ = "0+unknown"

DB_FILE = "model-registry.db"
LOG_FILE = "model-registry.log"
_EXE = "model-registry.exe" if os.name == "nt" else "model-registry"


class LocalServerError(RuntimeError):
    """The local server did not start or get ready; the message ends with its log."""


def default_data_dir() -> Path:
    """Where local() keeps its SQLite file when given no data_dir: the user's data directory."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        # XDG: a relative XDG_DATA_HOME is invalid by the spec and is ignored.
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"
    return base / "model-registry"


def binary() -> str:
    """Path of the model-registry binary: $MODEL_REGISTRY_BIN, else the one this package installed."""
    override = os.environ.get("MODEL_REGISTRY_BIN")
    if override:
        return override
    # The wheel puts it in the scripts directory of the environment it was installed into; a
    # notebook kernel's PATH often lacks that directory (venv not activated), so look there first.
    dirs = [sysconfig.get_path("scripts")]
    try:
        dirs.append(sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user")))
    except (KeyError, ValueError):
        pass
    for d in dirs:
        if d and os.path.isfile(os.path.join(d, _EXE)):
            return os.path.join(d, _EXE)
    found = shutil.which(_EXE)
    if found:
        return found
    raise LocalServerError(f"{_EXE} not found in {dirs} nor on PATH; reinstall model-registry-server "
                           "or set MODEL_REGISTRY_BIN")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _health(url: str) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(2000).decode(errors="replace")
    except OSError as e:
        return None, str(e)


# Started as `python -c _LAUNCHER <parent pid> <binary> <args...>` on Linux: asks the kernel to
# SIGTERM the server when the thread that started it dies (a kill -9 of the notebook kernel runs
# no atexit), then execs the server in the same process. Done here rather than in a preexec_fn,
# which can deadlock in a process that has threads (a Jupyter kernel has several).
_LAUNCHER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent died before prctl took effect
os.execv(sys.argv[2], sys.argv[2:])
"""


class LocalServer:
    """`model-registry proxy` on `host:port` with the SQLite file `<data_dir>/model-registry.db`.

    start() waits until GET /readyz/health answers 200 (up to `timeout` seconds); stop() sends
    SIGTERM, then kills after `stop_timeout` seconds. A started server is also stopped when the
    Python process exits. Its output goes to `<data_dir>/model-registry.log` (appended).
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, port: int | None = None, *,
                 host: str = "127.0.0.1", timeout: float = 30.0, stop_timeout: float = 10.0,
                 args: list[str] | None = None):
        self.data_dir = Path(data_dir if data_dir is not None else default_data_dir()).expanduser().resolve()
        self.host = host
        self.port = port
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(args or [])
        self.db_path = self.data_dir / DB_FILE
        self.log_path = self.data_dir / LOG_FILE
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        """The web UI's address: open it in a browser."""
        return f"{self.url}/"

    @property
    def tracking_uri(self) -> str:
        """Where MLflow's client finds this server's MLflow API (`/api/2.0/mlflow/...`):
        `mlflow.set_registry_uri(server.tracking_uri)`."""
        return self.url

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> LocalServer:
        with self._lock:
            if self.running():
                return self
            self.data_dir.mkdir(parents=True, exist_ok=True)
            exe = binary()
            fixed_port = self.port
            error = ""
            for _ in range(1 if fixed_port else 3):  # a probed free port can be taken before the bind
                self.port = fixed_port or _free_port(self.host)
                error = self._start_once(exe)
                if not error:
                    atexit.register(self.stop)
                    return self
                if fixed_port or "in use" not in error.lower():
                    break
            raise LocalServerError(error)

    def _start_once(self, exe: str) -> str:
        """Start and wait for readiness: '' when ready, else why not (with the server's log)."""
        server_cmd = [exe, "proxy", "--hostname", self.host, "--port", str(self.port),
                      "--embedmd-database-type", "sqlite", "--embedmd-database-dsn", str(self.db_path),
                      *self.extra_args]
        cmd = server_cmd
        # PDEATHSIG fires when the starting *thread* ends, so it is used only from the main thread.
        if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
            cmd = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *server_cmd]
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            log.write(f"=== model_registry_server: {' '.join(server_cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.data_dir)
        health = f"{self.url}/readyz/health"
        deadline = time.monotonic() + self.timeout
        status, body = None, ""
        try:
            while time.monotonic() < deadline and self.proc.poll() is None:
                status, body = _health(health)
                # Alive after the 200: not another server's answer on a port ours failed to bind.
                if status == 200 and self.proc.poll() is None:
                    return ""
                time.sleep(0.05)
        except BaseException:  # e.g. a KeyboardInterrupt in a notebook: leave no server behind
            self._terminate()
            raise
        code = self.proc.poll()
        self._terminate()
        why = (f"model-registry exited with {code} before it was ready" if code is not None
               else f"model-registry not ready after {self.timeout:g} s")
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                log_text = f.read().decode(errors="replace")[-8000:]
        except OSError as e:
            log_text = f"<cannot read {self.log_path}: {e}>"
        return f"{why} (last {health}: {status} {body!r}); its log ({self.log_path}):\n{log_text}"

    def _terminate(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM: the server shuts down gracefully
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        with self._lock:
            atexit.unregister(self.stop)
            self._terminate()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"<LocalServer {self.url} {state}, database {self.db_path}>"


_registry_class = None


def _local_registry_class():
    """ModelRegistry plus a context manager and the server: built on first use so that importing
    this package does not import the client."""
    global _registry_class
    if _registry_class is None:
        from model_registry import ModelRegistry

        class LocalModelRegistry(ModelRegistry):
            """The official client connected to a LocalServer (`.server`); `with` stops the server."""

            server: LocalServer

            @property
            def ui_url(self) -> str:
                """The web UI's address (the server's `/`)."""
                return self.server.ui_url

            @property
            def tracking_uri(self) -> str:
                """For MLflow's client: `mlflow.set_registry_uri(registry.tracking_uri)`."""
                return self.server.tracking_uri

            def stop(self) -> None:
                self.server.stop()

            def __enter__(self):
                return self

            def __exit__(self, *exc: object) -> None:
                self.server.stop()

            def __repr__(self) -> str:
                return f"<LocalModelRegistry on {self.server!r}>"

        LocalModelRegistry.__qualname__ = "LocalModelRegistry"
        _registry_class = LocalModelRegistry
    return _registry_class


def _no_port_hint(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Server address protocol is http://")


def local(data_dir: str | os.PathLike | None = None, port: int | None = None, author: str | None = None,
          *, timeout: float = 30.0, server_args: list[str] | None = None, **client_kwargs: Any):
    """Start a local server and return a `model_registry.ModelRegistry` connected to it.

    data_dir: directory of the SQLite file (created if missing; default: default_data_dir()).
    port: TCP port on 127.0.0.1 (default: a free one). author: the client's author (default:
    the login name). timeout: seconds to wait for readiness. server_args: extra flags of
    `model-registry proxy`. Other keyword arguments go to ModelRegistry.

    `with local() as registry:` stops the server at the end of the block; a plain call keeps it
    until `registry.stop()` or the end of the Python process. `registry.server` is the LocalServer;
    `registry.ui_url` the web UI's address.
    """
    cls = _local_registry_class()  # before the server starts: a missing client fails fast
    server = LocalServer(data_dir, port, timeout=timeout, args=server_args).start()
    if author is None:
        try:
            author = getpass.getuser()
        except Exception:  # no login name (some containers)
            author = "local"
    try:
        # The client warns that it has no access token and that http is not on port 80: both are
        # right for a local server, and noise in a notebook.
        client_log = logging.getLogger("model-registry")
        client_log.addFilter(_no_port_hint)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="User access token is missing")
                registry = cls(f"http://{server.host}", server.port, author=author, is_secure=False, **client_kwargs)
        finally:
            client_log.removeFilter(_no_port_hint)
    except BaseException:
        server.stop()
        raise
    registry.server = server
    return registry
