"""Which official Python client the e2e suite runs with, and which REST API it speaks.

The suite runs under two venvs (scripts/test-env.sh): `.venv` with model-registry 0.3.14, the newest
client on `/api/model_registry/v1alpha3`, and `.venv-v1` with 0.3.18, which calls
`/api/model_registry/v1`. Upstream's clients switched prefix in July 2026: 0.3.12 and every
release from 0.3.15 on call v1; the others (up to 0.3.14) call v1alpha3.

v1 is v1alpha3 minus experiment tracking (experiments, runs, metric history; artifacts lose
`experimentId`/`experimentRunId`), and its `Metric.step` is int64 decimal text instead of an integer.
"""

from __future__ import annotations

import importlib.metadata
import re

API_V1ALPHA3 = "/api/model_registry/v1alpha3"
API_V1 = "/api/model_registry/v1"

CLIENT_VERSION: str = importlib.metadata.version("model-registry")


def _release(version: str) -> tuple[int, ...]:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    if not m:
        raise RuntimeError(f"model-registry {version!r}: not a release version the e2e suite knows")
    return tuple(int(x) for x in m.groups())


def api_prefix_of(version: str) -> str:
    """The REST prefix a given client release calls."""
    v = _release(version)
    return API_V1 if v == (0, 3, 12) or v >= (0, 3, 15) else API_V1ALPHA3


# The prefix the installed client should call (checked against the client itself by
# test_client_calls_its_api_prefix); the raw-HTTP checks of the suite use it too.
API: str = api_prefix_of(CLIENT_VERSION)
IS_V1: bool = API == API_V1
# Experiments, runs and metric history exist in v1alpha3 only.
HAS_EXPERIMENTS: bool = not IS_V1


def describe() -> str:
    what = "experiments/runs/metric history included" if HAS_EXPERIMENTS else \
        "no experiments/runs/metric history in this API: those tests are deselected"
    return f"model-registry client {CLIENT_VERSION} -> {API} ({what})"
