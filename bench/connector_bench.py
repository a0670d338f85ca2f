"""Listing benchmark of the connectors against real servers.

For each connector a setup function starts a private server on loopback, fills it with 10,000 accounts and
1,000 groups (10 members each), and yields the connector config. The listings (``std:account:list`` and
``std:entitlement:list``) then run in a fresh subprocess, so the peak RSS (``ru_maxrss``) is the listing's own.

    python bench/connector_bench.py              # every registered connector
    python bench/connector_bench.py ldap scim    # chosen connectors

To add a connector, write a setup function (a context manager yielding its config) and register it in
``SETUPS``; keep each connector's code in its own functions.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ACCOUNTS = 10_000
GROUPS = 1_000
MEMBERS_PER_GROUP = 10


def members_of(group: int) -> list[int]:
    """The account numbers in a group: 10 accounts, spread over the whole population."""
    return [(group * MEMBERS_PER_GROUP + i) % ACCOUNTS for i in range(MEMBERS_PER_GROUP)]


# -- ldap: slapd filled with slapadd before it starts ------------------------------------------------------


def _ldap_ldif() -> str:
    from connectors.tests.test_ldap import GROUPS as GROUP_BASE
    from connectors.tests.test_ldap import PEOPLE, SUFFIX

    groups_of: dict[int, list[int]] = {}
    for g in range(GROUPS):
        for a in members_of(g):
            groups_of.setdefault(a, []).append(g)
    out = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUP_BASE}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for a in range(ACCOUNTS):
        lines = [
            f"dn: uid=user{a:05d},{PEOPLE}",
            "objectClass: inetOrgPerson",
            f"uid: user{a:05d}",
            f"cn: User {a:05d}",
            f"sn: {a:05d}",
            "givenName: User",
            f"mail: user{a:05d}@example.org",
            f"title: {('Engineer', 'Manager', 'Analyst')[a % 3]}",
        ]
        lines += [f"memberOf: cn=group{g:04d},{GROUP_BASE}" for g in groups_of.get(a, ())]
        out.append("\n".join(lines) + "\n")
    for g in range(GROUPS):
        lines = [f"dn: cn=group{g:04d},{GROUP_BASE}", "objectClass: groupOfNames", f"cn: group{g:04d}"]
        lines += [f"member: uid=user{a:05d},{PEOPLE}" for a in members_of(g)]
        lines.append(f"owner: uid=user{g:05d},{PEOPLE}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


@contextlib.contextmanager
def setup_ldap() -> Iterator[dict]:
    from connectors.tests.test_ldap import Slapd, base_config

    server = Slapd(tls=False, ldif=_ldap_ldif()).start()
    try:
        yield base_config(server, provisioning=False)
    finally:
        server.stop()


# -- scim: scim2-server filled with parallel POSTs ------------------------------------------------------------


@contextlib.contextmanager
def setup_scim() -> Iterator[dict]:
    import httpx

    from connectors.tests.test_scim import GROUP_SCHEMA, HEADERS, TOKEN, USER_SCHEMA, ScimServer

    server = ScimServer().start()
    try:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        with httpx.Client(base_url=server.url + "/", headers=HEADERS, timeout=30, limits=limits) as http:

            def post(path: str, body: dict) -> str:
                for attempt in range(5):  # the test server resets some connections under load
                    try:
                        response = http.post(path, json=body)
                        break
                    except httpx.TransportError:
                        if attempt == 4:
                            raise
                        time.sleep(0.05 * (attempt + 1))
                response.raise_for_status()
                return response.json()["id"]

            def user(a: int) -> str:
                return post("Users", {
                    "schemas": [USER_SCHEMA], "userName": f"user{a:05d}", "displayName": f"User {a:05d}",
                    "name": {"givenName": "User", "familyName": f"{a:05d}"},
                    "emails": [{"value": f"user{a:05d}@example.org", "primary": True}], "active": True,
                })  # fmt: skip

            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(user, range(ACCOUNTS)))

                def group(g: int) -> str:
                    members = [{"value": ids[a]} for a in members_of(g)]
                    return post(
                        "Groups",
                        {"schemas": [GROUP_SCHEMA], "displayName": f"group{g:04d}", "members": members},
                    )

                list(pool.map(group, range(GROUPS)))
        yield {
            "connectionOption": "bearer",
            "baseUrl": server.url,
            "token": TOKEN,
            "pageSize": 500,
            "timeout": 60,
        }
    finally:
        server.stop()


# -- mysql: throwaway users and roles in this machine's MariaDB, read by a throwaway service account -----------


@contextlib.contextmanager
def setup_mysql() -> Iterator[dict]:
    """10,000 users and 1,000 roles (the closest analogue of groups), each role granted to 10 users."""
    import secrets

    import pymysql

    prefix = f"bench_{secrets.token_hex(3)}_"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)

    def execute(statement: str, params=None) -> None:
        with conn.cursor() as cur:
            cur.execute(statement, params)

    def user(a: int) -> str:
        return f"'{prefix}user{a:05d}'@'%'"

    try:
        for start in range(0, ACCOUNTS, 500):
            execute("CREATE USER " + ", ".join(user(a) for a in range(start, min(start + 500, ACCOUNTS))))
        execute(f"CREATE USER {user(ACCOUNTS)} IDENTIFIED BY 'bench-password'")  # the service account
        execute(f"GRANT SELECT ON mysql.* TO {user(ACCOUNTS)}")
        execute(f"GRANT SHOW DATABASES ON *.* TO {user(ACCOUNTS)}")
        for g in range(GROUPS):
            execute(f"CREATE ROLE `{prefix}role{g:04d}`")
            execute(f"GRANT `{prefix}role{g:04d}` TO " + ", ".join(user(a) for a in members_of(g)))
        yield {
            "host": "127.0.0.1",
            "port": 3306,
            "username": f"{prefix}user{ACCOUNTS:05d}",
            "password": "bench-password",
            "tlsMode": "disabled",
            "userNamePattern": "^" + prefix,
            "databaseNamePattern": "^" + prefix,
        }
    finally:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT User, Host, is_role FROM mysql.user WHERE User LIKE %s",
                (prefix.replace("_", "\\_") + "%",),
            )
            rows = cur.fetchall()
        for name, host, is_role in rows:
            if is_role == "Y":
                execute(f"DROP ROLE `{name}`")
            else:
                execute("DROP USER %s@%s", (name, host))
        conn.close()


# -- redis: a private redis-server with 10,000 ACL users ----------------------------------------------------------


@contextlib.contextmanager
def setup_redis() -> Iterator[dict]:
    """10,000 ACL users; 1,000 key patterns (the closest analogue of groups), each granted to 10 users."""
    import shutil
    import socket
    import tempfile

    import redis

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", folder, "--daemonize", "no", "--logfile", "", "--requirepass", "bench"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port, password="bench")
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        patterns_of: dict[int, list[int]] = {}
        for g in range(GROUPS):
            for a in members_of(g):
                patterns_of.setdefault(a, []).append(g)
        pipe = client.pipeline(transaction=False)
        for a in range(ACCOUNTS):
            rules = [
                "on",
                "#" + "0" * 64,
                "-@all",
                "+@read",
                *(f"~app{g:04d}:*" for g in patterns_of.get(a, ())),
            ]
            pipe.execute_command("ACL", "SETUSER", f"user{a:05d}", *rules)
        pipe.execute()
        yield {"host": "127.0.0.1", "port": port, "username": "default", "password": "bench", "pageSize": 500}
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


# -- aws_iam: a local moto server with 10,000 IAM users and 1,000 groups ------------------------------------------


@contextlib.contextmanager
def setup_aws_iam() -> Iterator[dict]:
    import socket
    import urllib.request

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**__import__("os").environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(url + "/moto-api/data.json", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        client = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda a: client.create_user(UserName=f"user{a:05d}"), range(ACCOUNTS)))
            list(pool.map(lambda g: client.create_group(GroupName=f"group{g:04d}"), range(GROUPS)))
            pairs = [(g, a) for g in range(GROUPS) for a in members_of(g)]
            list(pool.map(lambda p: client.add_user_to_group(GroupName=f"group{p[0]:04d}", UserName=f"user{p[1]:05d}"), pairs))  # fmt: skip
        yield {
            "connectionOption": "accessKey",
            "accessKeyId": "testing",
            "secretAccessKey": "testing",
            "endpointUrl": url,
            "pageSize": 500,
            "timeout": 120,
        }
    finally:
        proc.terminate()
        proc.wait(5)


SETUPS: dict[str, Callable[[], contextlib.AbstractContextManager[dict]]] = {
    "ldap": setup_ldap,
    "scim": setup_scim,
    "mysql": setup_mysql,
    "redis": setup_redis,
    "aws_iam": setup_aws_iam,
}


# -- measuring ------------------------------------------------------------------------------------------------


def measure(slug: str, config: dict) -> dict:
    """Run the listings of one connector in this process; return counts, rates and the peak RSS."""
    from connectors.registry import get

    connector = get(slug)
    figures: dict = {"connector": slug}
    for label, command in (("accounts", "std:account:list"), ("entitlements", "std:entitlement:list")):
        count = 0

        def emit(kind, data):
            nonlocal count
            if kind == "output":
                count += 1

        started = time.perf_counter()
        connector.execute(command, config, {}, emit=emit)
        elapsed = time.perf_counter() - started
        figures[label] = {
            "objects": count,
            "seconds": round(elapsed, 3),
            "per_second": round(count / elapsed),
        }
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def bench(slug: str) -> dict:
    started = time.perf_counter()
    with SETUPS[slug]() as config:
        filled = time.perf_counter() - started
        child = subprocess.run(
            [sys.executable, __file__, "--measure", slug, json.dumps(config)],
            check=True,
            capture_output=True,
            text=True,
        )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    figures["setup_seconds"] = round(filled, 1)
    return figures


def main(argv: list[str]) -> None:
    if argv[:1] == ["--measure"]:
        print(json.dumps(measure(argv[1], json.loads(argv[2]))))
        return
    slugs = argv or list(SETUPS)
    unknown = [s for s in slugs if s not in SETUPS]
    if unknown:
        raise SystemExit(f"no benchmark setup for {', '.join(unknown)} (known: {', '.join(SETUPS)})")
    print(
        f"{ACCOUNTS:,} accounts, {GROUPS:,} groups of {MEMBERS_PER_GROUP} members; listings in a fresh process"
    )
    print(f"{'connector':<12}{'accounts/s':>12}{'entitlements/s':>16}{'peak RSS MiB':>14}{'setup s':>10}")
    for slug in slugs:
        f = bench(slug)
        print(
            f"{slug:<12}{f['accounts']['per_second']:>12,}{f['entitlements']['per_second']:>16,}"
            f"{f['peak_rss_mib']:>14}{f['setup_seconds']:>10}"
            f"   ({f['accounts']['objects']:,} accounts in {f['accounts']['seconds']} s, "
            f"{f['entitlements']['objects']:,} entitlements in {f['entitlements']['seconds']} s)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
