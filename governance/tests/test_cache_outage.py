"""A Redis outage does not take the API down: the rate limits fail open, with a warning in the log.

A real gunicorn server of the portal with ``CACHE_URL`` pointing at a private redis-server that
the test kills, or pauses (SIGSTOP: connections hang instead of being refused).
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest
import redis

from connectors.testing import stop_process
from governance.tokens import api_token_create


def _get(url: str, token: str | None = None) -> httpx.Response:
    """A paused Redis costs the cache's socket timeout (1 s), never a hung request: 5 s is plenty."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/api/tokens/", headers=headers, timeout=5)


@pytest.mark.parametrize("outage", ["stopped", "paused"])
def test_the_api_answers_while_the_cache_is_down(
    outage, private_redis, web_server, django_user_model, tmp_path
):
    port, proc = private_redis
    env = {
        **{k: v for k, v in os.environ.items() if k != "CACHE_URL"},
        "CACHE_URL": f"redis://127.0.0.1:{port}/0",
    }
    url = web_server(env)
    user = django_user_model.objects.create(username="scripted")
    _, token = api_token_create(actor=user, name="terraform")

    response = _get(url, token)
    assert response.status_code == 200
    assert redis.Redis(port=port).keys("*throttle_token_*")  # counted in this Redis

    if outage == "stopped":
        stop_process(proc)
    else:
        os.kill(proc.pid, signal.SIGSTOP)
    for _ in range(3):
        response = _get(url, token)
        assert response.status_code == 200, response.text  # not 500: the API goes on without rate limits
    # An unknown token is still refused, without being counted, and without a 500.
    response = _get(url, "gov_deadbeef_wrong")
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"
    # Anonymous calls are refused as before.
    assert _get(url).status_code == 401

    log = next(tmp_path.glob("gunicorn-*.log")).read_text()
    assert "The cache (CACHE_URL) is unavailable, rate limiting is skipped" in log
    assert log.count("rate limiting is skipped") == 1  # once a minute, not once per request
    assert "Traceback" not in log

    if outage == "paused":  # back: counting resumes
        os.kill(proc.pid, signal.SIGCONT)
        assert _get(url, token).status_code == 200
        assert redis.Redis(port=port).keys("*throttle_token_*")
