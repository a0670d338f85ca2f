"""Rate limits across processes: two real gunicorn servers on the test database and the real Redis.

With ``CACHE_URL`` pointing at Redis the two servers share one budget per token, exactly, even
when the requests arrive at both at once; with the embedded default (memory of each process)
each server counts alone.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from governance.tokens import api_token_create

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
RATE = 10  # per hour: far from a window's end for the whole test (checked below)


@pytest.fixture
def servers(web_server):
    """Start gunicorn servers on the test database; returns their base URLs."""
    redis.Redis.from_url(REDIS_URL).ping()  # a missing Redis is a failure, not a skip

    def start(count: int, cache_url: str | None) -> list[str]:
        env = {
            **{k: v for k, v in os.environ.items() if k != "CACHE_URL"},
            "API_RATE_TOKEN": f"{RATE}/hour",
            **({"CACHE_URL": cache_url} if cache_url else {}),
        }
        return [web_server(env) for _ in range(count)]

    return start


def _away_from_the_window_end():
    """Counters are per calendar hour: do not start a burst in its last half minute."""
    left = 3600 - time.time() % 3600
    if left < 30:
        time.sleep(left + 1)


def _burst(urls: list[str], token: str, per_server: int) -> list[httpx.Response]:
    """``per_server`` requests to each server, all in flight together."""
    targets = [url for url in urls for _ in range(per_server)]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(len(targets)) as pool:
        return list(pool.map(lambda url: client.get(f"{url}/api/tokens/", headers=headers), targets))


def test_two_servers_on_redis_share_one_tokens_budget(servers, django_user_model):
    prefix = f"throttle-test-{uuid.uuid4().hex[:8]}"
    urls = servers(2, f"{REDIS_URL}?key_prefix={prefix}")
    user = django_user_model.objects.create(username="scripted")
    _, token = api_token_create(actor=user, name="terraform")
    _, second = api_token_create(actor=user, name="another script")
    _away_from_the_window_end()
    try:
        # 50 requests at once: counting that reads, changes and writes back (DRF's default) lets
        # more than 10 through here; the atomic counter lets exactly 10 through.
        responses = _burst(urls, token, per_server=25)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] * RATE + [429] * (50 - RATE), codes
        for r in responses:
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "throttled"
                assert 0 < int(r.headers["Retry-After"]) <= 3600
        # Both servers refuse the spent token now; another token has its own budget.
        assert {httpx.get(f"{u}/api/tokens/", headers={"Authorization": f"Bearer {token}"}).status_code
                for u in urls} == {429}  # fmt: skip
        assert [r.status_code for r in _burst(urls, second, per_server=1)] == [200, 200]
        # The counters are in Redis, under the configured prefix.
        keys = redis.Redis.from_url(REDIS_URL).keys(f"{prefix}:*")
        assert keys and all(b"throttle_token_" in k for k in keys)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def test_without_a_shared_cache_each_server_counts_alone(servers, django_user_model):
    urls = servers(2, None)
    user = django_user_model.objects.create(username="scripted")
    _, token = api_token_create(actor=user, name="terraform")
    _away_from_the_window_end()
    codes = [r.status_code for r in _burst(urls, token, per_server=RATE // 2 + 2)]
    assert codes.count(200) == len(codes)  # 7 per process: each under its own budget of 10
