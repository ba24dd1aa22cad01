"""Which connectors run, from settings. A platform without credentials is skipped with a log line.

Each platform's connector module (and with it its client library) is imported when its sources
or repliers are first built, not when this module is: a restarted `flare connectors` polls X and
Reddit while Bluesky's SDK is still loading (atproto builds some 660 pydantic models on import,
1.5 s of CPU, which took 5-8 s on a loaded 2-core machine), and a process that replies on one
platform only never loads the others."""
from __future__ import annotations

import logging
from collections.abc import Callable

from config.settings import Settings
from models.seams import Replier, Source

log = logging.getLogger(__name__)

BLUESKY_SESSION_FILE = "bluesky_session.txt"
SourceBuilder = Callable[[], list[Source]]


def _bluesky_account(settings: Settings, **kwargs):
    from connectors.bluesky import BlueskyAccount  # on first use: see the module docstring

    return BlueskyAccount(settings.bluesky, settings.data_dir / BLUESKY_SESSION_FILE, **kwargs)


def _x_sources(settings: Settings) -> list[Source]:
    from connectors.x import XDirectMessagesSource, XMentionsSource, has_user_auth

    sources: list[Source] = [XMentionsSource(settings.x)]
    if has_user_auth(settings.x):
        sources.append(XDirectMessagesSource(settings.x))
    else:
        log.warning("x: DM intake disabled: DMs need OAuth 1.0a user credentials "
                    "(FLARE_X__CONSUMER_KEY/_SECRET, FLARE_X__ACCESS_TOKEN/_SECRET)")
    return sources


def _bluesky_sources(settings: Settings) -> list[Source]:
    from connectors.bluesky import POLL_TIMEOUT, BlueskyDirectMessagesSource, BlueskyNotificationsSource

    account = _bluesky_account(settings, timeout=POLL_TIMEOUT)
    return [BlueskyNotificationsSource(account), BlueskyDirectMessagesSource(account)]


def _reddit_sources(settings: Settings) -> list[Source]:
    from connectors.reddit import POLL_TIMEOUT, RedditInboxSource, RedditSubredditSource, make_reddit

    reddit = make_reddit(settings.reddit, timeout=POLL_TIMEOUT, polls=True)
    return [RedditInboxSource(settings.reddit, reddit),
            *(RedditSubredditSource(settings.reddit, sub, reddit) for sub in settings.reddit.subreddits)]


def source_builders(settings: Settings) -> dict[str, SourceBuilder]:
    """Per configured platform, what imports its connector and builds its sources (the polling
    runner calls each in that platform's own thread: connectors.runner.run_platforms)."""
    builders: dict[str, SourceBuilder] = {}
    if settings.x.configured:
        builders["x"] = lambda: _x_sources(settings)
    else:
        log.warning("x: disabled: set FLARE_X__BEARER_TOKEN and FLARE_X__USER_ID to read mentions")
    if settings.bluesky.configured:
        builders["bluesky"] = lambda: _bluesky_sources(settings)
    else:
        log.warning("bluesky: disabled: set FLARE_BLUESKY__HANDLE and FLARE_BLUESKY__APP_PASSWORD")
    if settings.reddit.configured:
        builders["reddit"] = lambda: _reddit_sources(settings)
    else:
        log.warning("reddit: disabled: set FLARE_REDDIT__CLIENT_ID, __CLIENT_SECRET, __USERNAME (and __PASSWORD)")
    return builders


def build_sources(settings: Settings) -> list[Source]:
    """Every configured platform's sources, built now."""
    return [source for build in source_builders(settings).values() for source in build()]


def build_repliers(settings: Settings) -> dict[str, Replier]:
    repliers: dict[str, Replier] = {}
    if settings.x.configured:
        from connectors.x import XReplier, has_user_auth  # on first use: see the module docstring

        if has_user_auth(settings.x):
            repliers["x"] = XReplier(settings.x)
    if "x" not in repliers:
        log.warning("x: replies and DMs disabled: they need OAuth 1.0a user credentials")
    if settings.bluesky.configured:
        from connectors.bluesky import BlueskyReplier

        repliers["bluesky"] = BlueskyReplier(_bluesky_account(settings))
    else:
        log.warning("bluesky: replies and DMs disabled: no credentials")
    if settings.reddit.configured:
        from connectors.reddit import RedditReplier

        repliers["reddit"] = RedditReplier(settings.reddit, f"Message from {settings.service.name}")
    else:
        log.warning("reddit: replies and DMs disabled: no credentials")
    return repliers
