"""Sandbox fixtures: a fresh imitation of the three platforms on a free port per test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import Settings
from config.settings import BlueskySettings, RedditSettings, XSettings
from connectors.sandbox import SandboxServer, SandboxState


@pytest.fixture
def sandbox() -> Iterator[tuple[SandboxState, str]]:
    state = SandboxState()
    server = SandboxServer(state)
    url = server.start()
    yield state, url
    server.stop()


def sandbox_settings(base: Settings, url: str, poll_seconds: float = 0.2) -> Settings:
    """Credentials the sandbox accepts; every platform pointed at it."""
    return base.model_copy(update={
        "x": XSettings(bearer_token="sandbox-bearer", consumer_key="ck", consumer_secret="cs",
                       access_token="at", access_token_secret="ats", user_id="1000", base_url=url,
                       poll_seconds=poll_seconds),
        "bluesky": BlueskySettings(handle="flare999.bsky.social", app_password="app-pass", base_url=url,
                                   poll_seconds=poll_seconds),
        "reddit": RedditSettings(client_id="cid", client_secret="csecret", username="flare999", password="pw",
                                 base_url=url, subreddits=["emergencytest"], poll_seconds=poll_seconds),
    })


@pytest.fixture
def platform_settings(settings: Settings, sandbox) -> Settings:
    return sandbox_settings(settings, sandbox[1])
