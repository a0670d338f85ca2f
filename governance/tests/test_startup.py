"""Settings from the environment: startup errors, the embedded default, the deployment file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, env_overrides: dict, drop=(), timeout=300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_production_start_without_a_key_names_it_in_one_line(missing, tmp_path):
    result = _manage("check", env_overrides={"DEBUG": "false", "VAR_DIR": str(tmp_path)}, drop=[missing])
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_encryption_key_is_one_clear_line(tmp_path):
    result = _manage(
        "check",
        env_overrides={"DEBUG": "false", "FIELD_ENCRYPTION_KEY": "not-a-key", "VAR_DIR": str(tmp_path)},
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "FIELD_ENCRYPTION_KEY" in result.stderr and "Traceback" not in result.stderr


def test_invalid_cache_url_is_one_clear_line(tmp_path):
    result = _manage("check", env_overrides={"CACHE_URL": "memcached-ish://x", "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "CACHE_URL" in result.stderr and "Traceback" not in result.stderr


def test_cache_url_selects_djangos_redis_backend(tmp_path):
    code = (
        "from django.conf import settings; from django.core.cache import cache; "
        "print(settings.CACHES['default']['BACKEND'], settings.CACHES['default'].get('KEY_PREFIX')); "
        "cache.set('probe', 1, 30); print(cache.get('probe')); cache.delete('probe')"
    )
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    result = _manage(
        "shell", "-v", "0", "-c", code, env_overrides={"CACHE_URL": f"{redis_url}?key_prefix=startup-probe"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.core.cache.backends.redis.RedisCache", "startup-probe", "1"]
    result = _manage("shell", "-v", "0", "-c", code, env_overrides={}, drop=["CACHE_URL"])
    assert result.stdout.split()[:2] == ["django.core.cache.backends.locmem.LocMemCache", "None"]


def test_embedded_default_runs_on_sqlite_with_in_process_tasks(tmp_path):
    """No DATABASE_URL, broker or keys: a development start on SQLite under VAR_DIR, with demo data."""
    env = {"DEBUG": "true", "VAR_DIR": str(tmp_path)}
    drop = ["DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY"]
    migrate = _manage("migrate", "--noinput", env_overrides=env, drop=drop)
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "portal.sqlite3").exists()
    keys = (tmp_path / "dev-keys.env").read_text()
    assert "SECRET_KEY=" in keys and "FIELD_ENCRYPTION_KEY=" in keys
    assert oct((tmp_path / "dev-keys.env").stat().st_mode & 0o777) == "0o600"

    demo = _manage("demo", "--scale", "0.02", env_overrides=env, drop=drop)
    assert demo.returncode == 0, demo.stderr
    assert "Sign in as: admin / admin" in demo.stdout

    probe = _manage(
        "shell",
        "-c",
        "from django.conf import settings; from integrations.models import Integration, Resource;"
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER,"
        " Integration.objects.count(), Resource.objects.exists())",
        env_overrides=env,
        drop=drop,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1].split() == [
        "django.db.backends.sqlite3",
        "True",
        "5",
        "True",
    ]


def test_docker_compose_runs_every_process_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= services.keys()
    portal = [services[name] for name in ("web", "worker", "beat")]
    assert len({(s.get("build"), s.get("image")) for s in portal}) == 1
    assert "gunicorn governance.wsgi" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A governance worker")
    assert services["beat"]["command"].startswith("celery -A governance beat")
    for s in portal:
        assert s["environment"]["DATABASE_URL"].startswith("postgres://")
        assert s["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert s["environment"]["CACHE_URL"].startswith("redis://redis:")  # one rate-limit budget
    assert (ROOT / services["web"]["build"] / "Dockerfile").exists()
