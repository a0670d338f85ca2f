"""The AWS IAM connector against local moto servers started for the session on loopback.

* ``moto``: the main server, IAM with the AWS managed policies loaded; reset (``POST /moto-api/reset``) and
  filled again before each test that changes it.
* ``authed``: a second server that checks credentials and IAM policies (``INITIAL_NO_AUTH_ACTION_COUNT``):
  its first three requests create an admin user and its access key, every later request is signed and
  authorised, so wrong keys and missing permissions fail for real.

A server that does not start fails the tests (no skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from connectors.aws_iam import connector as aws_module
from connectors.aws_iam.connector import connector as aws_iam
from connectors.sdk import ConfigError, ConnectorError, InputError, ObjectNotFound
from connectors.testing import (
    ConnectorAcceptanceSuite,
    assert_connection_errors,
    free_port,
    stop_process,
)

HOST = "127.0.0.1"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'
)
TRUST = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}'
ACCOUNT = "123456789012"


def _moto_server(**env: str):
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        binary = Path(shutil.which("moto_server") or "moto_server")
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "-H", HOST, "-p", str(port)],
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/data.json", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on port {port} (exit {proc.poll()})")
            time.sleep(0.05)


def iam_client(url: str, key: str = "testing", secret: str = "testing"):
    return boto3.client(
        "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret
    )


@pytest.fixture(scope="session")
def moto():
    proc, url = _moto_server()
    try:
        yield url
    finally:
        stop_process(proc)


def fill(url: str) -> None:
    """Reset the server and create the users, groups and policies the tests expect."""
    urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10).read()
    c = iam_client(url)
    c.create_group(GroupName="developers")
    c.create_group(GroupName="auditors", Path="/audit/")
    c.attach_group_policy(GroupName="auditors", PolicyArn=READ_ONLY)
    arn = c.create_policy(PolicyName="deploy", PolicyDocument=POLICY,
                          Description="Deploys the app")["Policy"]["Arn"]  # fmt: skip
    c.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "web"}])
    c.add_user_to_group(GroupName="developers", UserName="alice")
    c.attach_user_policy(UserName="alice", PolicyArn=arn)
    c.create_user(UserName="bob", Path="/audit/")
    c.add_user_to_group(GroupName="auditors", UserName="bob")
    c.put_user_policy(UserName="bob", PolicyName="inline-s3", PolicyDocument=POLICY)
    c.create_user(UserName="carol")


@pytest.fixture
def iam(moto):
    fill(moto)
    return moto


def config(url: str, **extra) -> dict:
    return {
        "connectionOption": "accessKey",
        "accessKeyId": "testing",
        "secretAccessKey": "testing",
        "region": "us-east-1",
        "endpointUrl": url,
        "timeout": 10,
        "provisioning": True,
        **extra,
    }


@pytest.fixture(scope="session")
def authed():
    """A moto server enforcing IAM authentication: ``(url, admin keys, read-only keys, no-rights keys)``."""
    proc, url = _moto_server(INITIAL_NO_AUTH_ACTION_COUNT="3")
    try:
        c = iam_client(url)
        c.create_user(UserName="admin")
        c.attach_user_policy(UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        key = c.create_access_key(UserName="admin")["AccessKey"]
        admin_keys = (key["AccessKeyId"], key["SecretAccessKey"])
        c = iam_client(url, *admin_keys)
        keys = []
        for name, policy in (("reader", READ_ONLY), ("nobody", None)):
            c.create_user(UserName=name)
            if policy:
                c.attach_user_policy(UserName=name, PolicyArn=policy)
            k = c.create_access_key(UserName=name)["AccessKey"]
            keys.append((k["AccessKeyId"], k["SecretAccessKey"]))
        yield url, admin_keys, keys[0], keys[1]
    finally:
        stop_process(proc)


def run(command: str, cfg: dict, input: dict | None = None):
    return aws_iam.invoke(command, cfg, input)


def read(cfg: dict, name: str) -> dict:
    return run("std:account:read", cfg, {"identity": name})[0][0]["attributes"]


# -- the acceptance suite ----------------------------------------------------------------------------


class TestAwsIamAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return aws_iam

    @pytest.fixture
    def good_config(self, iam):
        return config(iam)

    @pytest.fixture
    def bad_configs(self, iam, authed):
        url, admin_keys, _, nobody = authed
        return {
            "wrong endpoint": config(f"http://{HOST}:{free_port()}"),
            "wrong secret key": config(url, accessKeyId=admin_keys[0], secretAccessKey="wrong"),
            "unknown access key": config(url, accessKeyId="AKIAUNKNOWN000000000", secretAccessKey="x"),
            "no IAM read permission": config(url, accessKeyId=nobody[0], secretAccessKey=nobody[1]),
        }

    @pytest.fixture
    def new_account(self):
        return {"identity": "acceptance-user", "attributes": {"tags": ["team=qa"]}}


# -- connection ---------------------------------------------------------------------------------------


def test_connection_errors_are_clear(authed):
    url, admin_keys, reader, nobody = authed
    assert run("std:test-connection", config(url, accessKeyId=reader[0], secretAccessKey=reader[1]))[0] == [
        {}
    ]
    port = free_port()
    assert_connection_errors(
        aws_iam,
        config(url, accessKeyId=admin_keys[0], secretAccessKey=admin_keys[1]),
        {
            "wrong secret key": (
                config(url, accessKeyId=admin_keys[0], secretAccessKey="wrong-secret"),
                f"authentication failed at {url}: wrong secret access key for access key {admin_keys[0]}",
            ),
            "unknown access key": (
                config(url, accessKeyId="AKIAUNKNOWN000000000", secretAccessKey="x"),
                f"authentication failed at {url}: unknown access key AKIAUNKNOWN000000000",
            ),
            "no IAM read permission": (
                config(url, accessKeyId=nobody[0], secretAccessKey=nobody[1]),
                "the credentials may not call iam:GetAccountAuthorizationDetails: attach IAMReadOnlyAccess "
                "(or allow iam:GetAccountAuthorizationDetails)",
            ),
            "wrong endpoint": (
                config(f"http://{HOST}:{port}"),
                f"cannot connect to http://{HOST}:{port}: connection refused or unknown host",
            ),
        },
        secrets=["wrong-secret"],
    )


def test_reader_can_list_but_not_provision(authed):
    url, _, reader, _ = authed
    cfg = config(url, accessKeyId=reader[0], secretAccessKey=reader[1])
    names = {o["identity"] for o in run("std:account:list", cfg)[0]}
    assert {"admin", "reader", "nobody"} <= names
    with pytest.raises(ConnectorError, match="cannot create x: AccessDenied"):
        run("std:account:create", cfg, {"identity": "x"})


def test_assume_role(iam):
    c = iam_client(iam)
    c.create_role(RoleName="governance", AssumeRolePolicyDocument=POLICY)
    cfg = config(
        iam,
        connectionOption="assumeRole",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/governance",
        externalId="ext",
    )
    assert run("std:test-connection", cfg)[0] == [{}]
    assert {o["identity"] for o in run("std:account:list", cfg)[0]} == {"alice", "bob", "carol"}
    with pytest.raises(ConfigError, match="roleArn"):
        run("std:test-connection", config(iam, connectionOption="assumeRole"))


# -- listing ------------------------------------------------------------------------------------------


def test_accounts(iam):
    found = {o["identity"]: o["attributes"] for o in run("std:account:list", config(iam))[0]}
    assert set(found) == {"alice", "bob", "carol"}
    alice = found["alice"]
    assert alice["groups"] == ["group:developers"]
    assert alice["policies"] == [f"policy:arn:aws:iam::{ACCOUNT}:policy/deploy"]
    assert alice["tags"] == ["team=web"] and alice["arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert alice["userId"] and alice["created"].endswith("Z")
    assert found["bob"]["inlinePolicies"] == ["inline-s3"] and found["bob"]["path"] == "/audit/"
    assert run("std:account:read", config(iam), {"identity": "alice"})[0][0]["attributes"] == alice
    scoped = {o["identity"] for o in run("std:account:list", config(iam, pathPrefix="/audit/"))[0]}
    assert scoped == {"bob"}
    with pytest.raises(ObjectNotFound, match="outside this source's scope"):
        run("std:account:read", config(iam, pathPrefix="/audit/"), {"identity": "alice"})
    with pytest.raises(ObjectNotFound, match="no such IAM user"):
        run("std:account:read", config(iam), {"identity": "ghost"})
    with pytest.raises(ConfigError, match="pathPrefix"):
        run("std:account:list", config(iam, pathPrefix="audit"))


def test_entitlements(iam):
    groups = {o["identity"]: o for o in run("std:entitlement:list", config(iam), {"type": "group"})[0]}
    assert set(groups) == {"group:developers", "group:auditors"}
    assert groups["group:auditors"]["attributes"]["implies"] == [f"policy:{READ_ONLY}"]
    m = aws_iam.spec.map_entitlement(groups["group:auditors"])
    assert (m.resource_id, m.resource_name, m.resource_kind, m.role_id) == (
        "group:auditors",
        "auditors",
        "IAM group",
        "member",
    )
    policies = {o["identity"]: o for o in run("std:entitlement:list", config(iam), {"type": "policy"})[0]}
    # Customer managed policies, and the AWS managed ones attached somewhere.
    assert set(policies) == {f"policy:arn:aws:iam::{ACCOUNT}:policy/deploy", f"policy:{READ_ONLY}"}
    deploy = policies[f"policy:arn:aws:iam::{ACCOUNT}:policy/deploy"]
    assert deploy["attributes"]["awsManaged"] is False and deploy["attributes"]["attachments"] == 1
    m = aws_iam.spec.map_entitlement(deploy)
    assert (m.resource_kind, m.role_id, m.resource_name) == ("managed policy", "attached", "deploy")
    everything = run("std:entitlement:list", config(iam, listAllAwsPolicies=True), {"type": "policy"})[0]
    assert len(everything) > 1000
    read_deploy = run("std:entitlement:read", config(iam), {"identity": deploy["identity"]})[0][0]
    assert read_deploy["attributes"]["description"] == "Deploys the app"  # ListPolicies has no descriptions
    ent = run("std:entitlement:read", config(iam), {"identity": "group:developers"})[0][0]
    assert ent["attributes"]["name"] == "developers"
    with pytest.raises(ObjectNotFound):
        run("std:entitlement:read", config(iam), {"identity": "group:ghosts"})
    with pytest.raises(InputError):
        run("std:entitlement:read", config(iam), {"identity": "role:x"})


def test_marker_loop_follows_every_page(iam, monkeypatch):
    """moto paginates ListPolicies: with 100 items per call the 1,000+ AWS policies take many Marker calls."""
    calls: list[dict] = []
    real = aws_module.Iam.__init__

    def init(self, s):
        real(self, s)
        self.client.meta.events.register(
            "before-call.iam.ListPolicies", lambda params, **kw: calls.append(dict(params["body"]))
        )

    monkeypatch.setattr(aws_module.Iam, "__init__", init)
    outputs = run(
        "std:entitlement:list", config(iam, listAllAwsPolicies=True, pageSize=100), {"type": "policy"}
    )[0]
    aws_calls = [c for c in calls if c.get("Scope") == "AWS"]
    assert len(aws_calls) == -(-(len(outputs) - 1) // 100)  # one call per 100 AWS policies
    assert all(str(c["MaxItems"]) == "100" for c in aws_calls)
    assert "Marker" not in aws_calls[0] and all("Marker" in c for c in aws_calls[1:])
    assert len({o["identity"] for o in outputs}) == len(outputs)


def test_marker_loop_unit():
    """The paginator follows Marker until IsTruncated is false, whatever the operation (stubbed pages)."""
    from botocore.stub import Stubber

    iam = aws_module.Iam(aws_module.settings(config("http://127.0.0.1:9", pageSize=2)))
    user = {"Path": "/", "UserName": "u", "UserId": "AIDAXXXXXXXXXXXXXXXXX", "Arn": "arn:aws:iam::1:user/u",
            "CreateDate": "2024-01-01T00:00:00Z"}  # fmt: skip
    with Stubber(iam.client) as stub:
        for i, marker in enumerate([None, "m1", "m2"]):
            expected = {"Filter": ["User"], "MaxItems": 2, **({"Marker": marker} if marker else {})}
            page = {"UserDetailList": [{**user, "UserName": f"u{i}a"}, {**user, "UserName": f"u{i}b"}],
                    "IsTruncated": i < 2, **({"Marker": f"m{i + 1}"} if i < 2 else {})}  # fmt: skip
            stub.add_response("get_account_authorization_details", page, expected)
        names = [u["UserName"] for p in iam.pages("get_account_authorization_details", Filter=["User"]) for u in p["UserDetailList"]]  # fmt: skip
        stub.assert_no_pending_responses()
    assert names == ["u0a", "u0b", "u1a", "u1b", "u2a", "u2b"]


# -- provisioning -------------------------------------------------------------------------------------


def test_provisioning_lifecycle(iam):
    cfg = config(iam)
    deploy = f"policy:arn:aws:iam::{ACCOUNT}:policy/deploy"
    created = run("std:account:create", cfg, {"identity": "dave", "attributes": {
        "groups": ["group:developers"], "policies": [deploy], "tags": ["team=ops"]}})[0][0]  # fmt: skip
    assert created["attributes"]["groups"] == ["group:developers"] and created["attributes"]["policies"] == [
        deploy
    ]
    assert created["attributes"]["tags"] == ["team=ops"]
    c = iam_client(iam)
    assert [g["GroupName"] for g in c.list_groups_for_user(UserName="dave")["Groups"]] == ["developers"]

    change = [
        {"op": "Add", "attribute": "groups", "value": "group:auditors"},
        {"op": "Remove", "attribute": "groups", "value": "group:developers"},
        {"op": "Set", "attribute": "policies", "value": [f"policy:{READ_ONLY}"]},
    ]
    updated = run("std:account:update", cfg, {"identity": "dave", "changes": change})[0][0]["attributes"]
    assert updated["groups"] == ["group:auditors"] and updated["policies"] == [f"policy:{READ_ONLY}"]
    assert [p["PolicyArn"] for p in c.list_attached_user_policies(UserName="dave")["AttachedPolicies"]] == [
        READ_ONLY
    ]

    # Delete removes what the user holds first: groups, policies, inline policies, access keys, password.
    c.put_user_policy(UserName="dave", PolicyName="inline", PolicyDocument=POLICY)
    c.create_access_key(UserName="dave")
    c.create_login_profile(UserName="dave", Password="Pa55word!x")
    run("std:account:delete", cfg, {"identity": "dave"})
    with pytest.raises(botocore.exceptions.ClientError):
        c.get_user(UserName="dave")
    assert "dave" not in [u["UserName"] for u in c.get_group(GroupName="auditors")["Users"]]


def test_failed_update_is_undone(iam):
    cfg = config(iam)
    change = [{"op": "Add", "attribute": "groups", "value": ["group:auditors", "group:ghosts"]}]
    with pytest.raises(ObjectNotFound, match="cannot grant group:ghosts for carol"):
        run("std:account:update", cfg, {"identity": "carol", "changes": change})
    assert read(cfg, "carol")["groups"] == []
    with pytest.raises(ConnectorError, match="cannot grant policy:arn:aws:iam::aws:policy/Nope"):
        run("std:account:create", cfg, {"identity": "erin", "attributes": {"policies": "policy:arn:aws:iam::aws:policy/Nope"}})  # fmt: skip
    with pytest.raises(ObjectNotFound):
        read(cfg, "erin")  # the user created for it was deleted again
    with pytest.raises(InputError, match="holds group"):
        run("std:account:update", cfg, {"identity": "carol", "changes": [{"op": "Add", "attribute": "groups", "value": f"policy:{READ_ONLY}"}]})  # fmt: skip


def test_provisioning_guards(iam):
    with pytest.raises(ConnectorError, match="provisioning is turned off"):
        run("std:account:create", config(iam, provisioning=False), {"identity": "frank"})
    with pytest.raises(ConnectorError, match="already exists"):
        run("std:account:create", config(iam), {"identity": "alice"})
    with pytest.raises(InputError, match="outside this source's scope"):
        run(
            "std:account:create",
            config(iam, pathPrefix="/audit/"),
            {"identity": "gina", "attributes": {"path": "/"}},
        )
