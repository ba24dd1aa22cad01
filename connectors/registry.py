"""Which connectors run, from settings. A platform without credentials is skipped with a log line."""
from __future__ import annotations

import logging

from config.settings import Settings
from connectors.bluesky import POLL_TIMEOUT as BLUESKY_POLL_TIMEOUT
from connectors.bluesky import BlueskyAccount, BlueskyDirectMessagesSource, BlueskyNotificationsSource, BlueskyReplier
from connectors.reddit import POLL_TIMEOUT as REDDIT_POLL_TIMEOUT
from connectors.reddit import RedditInboxSource, RedditReplier, RedditSubredditSource, make_reddit
from connectors.x import XDirectMessagesSource, XMentionsSource, XReplier, has_user_auth
from models.seams import Replier, Source

log = logging.getLogger(__name__)

BLUESKY_SESSION_FILE = "bluesky_session.txt"


def _bluesky_account(settings: Settings, **kwargs) -> BlueskyAccount:
    return BlueskyAccount(settings.bluesky, settings.data_dir / BLUESKY_SESSION_FILE, **kwargs)


def build_sources(settings: Settings) -> list[Source]:
    sources: list[Source] = []
    if settings.x.configured:
        sources.append(XMentionsSource(settings.x))
        if has_user_auth(settings.x):
            sources.append(XDirectMessagesSource(settings.x))
        else:
            log.warning("x: DM intake disabled: DMs need OAuth 1.0a user credentials "
                        "(FLARE_X__CONSUMER_KEY/_SECRET, FLARE_X__ACCESS_TOKEN/_SECRET)")
    else:
        log.warning("x: disabled: set FLARE_X__BEARER_TOKEN and FLARE_X__USER_ID to read mentions")
    if settings.bluesky.configured:
        account = _bluesky_account(settings, timeout=BLUESKY_POLL_TIMEOUT)
        sources += [BlueskyNotificationsSource(account), BlueskyDirectMessagesSource(account)]
    else:
        log.warning("bluesky: disabled: set FLARE_BLUESKY__HANDLE and FLARE_BLUESKY__APP_PASSWORD")
    if settings.reddit.configured:
        reddit = make_reddit(settings.reddit, timeout=REDDIT_POLL_TIMEOUT, polls=True)
        sources.append(RedditInboxSource(settings.reddit, reddit))
        sources += [RedditSubredditSource(settings.reddit, sub, reddit) for sub in settings.reddit.subreddits]
    else:
        log.warning("reddit: disabled: set FLARE_REDDIT__CLIENT_ID, __CLIENT_SECRET, __USERNAME (and __PASSWORD)")
    return sources


def build_repliers(settings: Settings) -> dict[str, Replier]:
    repliers: dict[str, Replier] = {}
    if settings.x.configured and has_user_auth(settings.x):
        repliers["x"] = XReplier(settings.x)
    else:
        log.warning("x: replies and DMs disabled: they need OAuth 1.0a user credentials")
    if settings.bluesky.configured:
        repliers["bluesky"] = BlueskyReplier(_bluesky_account(settings))
    else:
        log.warning("bluesky: replies and DMs disabled: no credentials")
    if settings.reddit.configured:
        repliers["reddit"] = RedditReplier(settings.reddit, f"Message from {settings.service.name}")
    else:
        log.warning("reddit: replies and DMs disabled: no credentials")
    return repliers
