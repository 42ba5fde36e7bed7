"""The public names of ``hubbub``: what the README tells users to import."""

from __future__ import annotations

import hubbub

EXPECTED = {
    "AsyncPublisher",
    "Client",
    "CloseCode",
    "CommandError",
    "ConfigError",
    "Credentials",
    "EngineUnavailable",
    "ErrorCode",
    "Hub",
    "HubbubError",
    "PublishCommand",
    "PublishError",
    "Publisher",
    "RpcContext",
    "Settings",
    "StreamPosition",
    "Subscription",
    "__version__",
    "issue_token",
    "load_settings",
}


def test_exports() -> None:
    assert set(hubbub.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(hubbub, name) is not None, name


def test_version_is_the_installed_one() -> None:
    assert hubbub.__version__[0].isdigit()
