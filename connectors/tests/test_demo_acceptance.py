"""The demo connector through the shared acceptance suite."""

from __future__ import annotations

import pytest

from connectors.demo.connector import connector as demo
from connectors.testing import ConnectorAcceptanceSuite


class TestDemoAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return demo

    @pytest.fixture
    def good_config(self, tmp_path):
        return {
            "url": "https://demo.example.com",
            "apiToken": "demo",
            "users": 120,
            "groups": 8,
            "memberships": 3,
            "seed": 7,
            "dataDir": str(tmp_path / "demo"),
        }

    @pytest.fixture
    def bad_configs(self, good_config):
        return {
            "wrong token": {**good_config, "apiToken": "not-the-token"},
            "wrong password": {
                **good_config,
                "connectionOption": "password",
                "username": "admin",
                "password": "wrong",
            },
            "wrong host": {**good_config, "url": "https://nowhere.invalid"},
            "missing url": {k: v for k, v in good_config.items() if k != "url"},
        }

    @pytest.fixture
    def new_account(self):
        return {
            "identity": "acceptance.user",
            "attributes": {"userName": "acceptance.user", "displayName": "Acceptance User", "groups": []},
        }


class TestDemoAcceptanceWithoutProvisioning(TestDemoAcceptance):
    """Without ``dataDir`` the demo lists and reads only; the suite still passes."""

    @pytest.fixture
    def good_config(self):
        return {"url": "https://demo.example.com", "apiToken": "demo", "users": 40, "groups": 3, "seed": 1}

    @pytest.fixture
    def new_account(self):
        return None

    def test_provisioning_round_trip(self, connector, good_config, new_account):
        """Without ``dataDir`` provisioning is refused with a clear error, and nothing is created."""
        from connectors.sdk import ConnectorError

        account = {"identity": "refused.user", "attributes": {"userName": "refused.user", "groups": []}}
        with pytest.raises(ConnectorError, match="dataDir"):
            connector.invoke("std:account:create", good_config, account)
        listed, _ = connector.invoke("std:account:list", good_config)
        assert "refused.user" not in {o["identity"] for o in listed}
