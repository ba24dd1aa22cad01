"""Cheap intake pre-screen (no encoder): which RQ lane a post waits in before full triage.

critical — a person may be in danger now ("my mum can't breathe", "I'm trapped", "send help").
urgent   — the keywords see no threat, but a small learned reader of words in any language its
           training rows hold (triage/lane.py) rates the post likely critical: cries worded
           without the keywords ("went blue and slid off his chair", Spanish, romanised Urdu).
default  — everything else, including plain reports of an event ("huge explosion by the station").
bulk     — amplification and commentary: retweets ("RT @x: ..."), prayers, "what was that bang".
Workers serve them in that order.

It only chooses a queue. Every post still gets the full triage; a miss here costs latency, never
the post. Why event words alone ("explosion", "fire", "smoke") are not critical: in a burst
thousands of onlookers use them, and if they all jumped the queue a lone cry for help elsewhere
would wait behind them. An event report that also says someone is hurt, trapped or asking for
help is critical.
"""
from __future__ import annotations

import re
import unicodedata

from models.enums import Lane
from triage.lane import LaneModel
from triage.signals import safety_net

# Zero-width characters, soft hyphens and bidi controls hide words from patterns ("tra\u200bpped").
_INVISIBLE = re.compile(r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
                        r"\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
_APOSTROPHES = re.compile(r"[\u2018\u2019\u201b\u2032\u02bc\u0060\u00b4]")
_NON_WORD = re.compile(r"[^\w']+")

# A person in danger now: any critical safety-net phrase (triage.signals, the one life-threat
# vocabulary the model pipeline and the rules fallback also use), plus words that only choose a
# lane (an emergency number, "ambulance", "hiding"): too weak for a decision, enough to be
# triaged first. Matched against the folded text (lower case, no accents, single spaces).
_LANE_HINTS = re.compile(
    r"\b(sos|mayday|999|911|112|ambulance|struggling to breathe|collaps\w*|passed out|"
    r"bleed\w*|stabb\w*|shot me|trapped|stuck inside|can'?t get out|drown\w*|fitting|"
    r"kill (?:me|him|her|us)|kidnap\w*|abduct\w*|intruder|break(?:ing)? in|someone in my house|"
    r"hiding|hostage|burn(?:t|ed|ing) (?:me|him|her|us|alive)|fire in my|smoke in my|"
    r"can'?t talk|can'?t speak|attack\w* me|hitting me|beating me|he'?s got a|in labou?r|"
    r"someone (?:is )?(?:inside|upstairs))\b"
)
# Danger words that commentary also uses ("hope nobody is hurt"): critical unless the post is
# framed as commentary or a retweet.
_WEAK_THREAT = re.compile(
    r"\b(hurt\w*|injur\w*|dying|dead|wounded|casualt\w*|gun\w*|knife|knives|shooting|stab|"
    r"threaten\w*|domestic|attack\w*|emergency)\b"
)
# Asking for help, as opposed to talking about an event.
_HELP_REQUEST = re.compile(
    r"\b(help me|help us|help him|help her|please help|pls help|plz help|send help|need help|"
    r"need an? (?:ambulance|doctor|medic|paramedic)|someone help|somebody help|get help|"
    r"call (?:an )?ambulance|call (?:the )?police|help$|^help\b)"
)
_BULK = re.compile(
    r"^(?:rt|qt)\s+@?\w+|\b(?:praying|prayers|pray for|thoughts (?:are )?with|thinking of|"
    r"stay safe|sending love|rip|heartbreaking|what was that|anyone know|does anyone know|"
    r"anyone else hear|did anyone hear|what'?s going on|what happened|heard (?:a|the) (?:bang|boom)|"
    r"so scary|breaking|live updates|news|video of|footage)\b"
)


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced text with straight apostrophes.

    NFKC turns full-width and styled letters ("ＨＥＬＰ", "𝐡𝐞𝐥𝐩") into plain ones; removing
    combining marks turns "dÿing" into "dying"."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _INVISIBLE.sub("", text)
    text = _APOSTROPHES.sub("'", text)
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text).strip()


def is_amplification(folded: str) -> bool:
    """A retweet/quote of someone else's words, or commentary about an event."""
    return bool(_BULK.search(folded))


def life_threat(folded: str) -> bool:
    return bool(_LANE_HINTS.search(folded) or _HELP_REQUEST.search(folded)
                or any(rule.urgency == "critical" for rule, _ in safety_net(folded)))


def lane_for(text: str, is_dm: bool = False, reader: LaneModel | None = None) -> str:
    """The lane, read as a table top to bottom:

    | the post                                                         | lane     |
    |------------------------------------------------------------------|----------|
    | a retweet passing on a cry (keywords or reader)                  | default  |
    | any other retweet                                                | bulk     |
    | a life threat in the keywords                                    | critical |
    | a weak threat word outside commentary, or in a DM                | critical |
    | a likely cry by the learned reader only                          | urgent   |
    | a DM                                                             | default  |
    | commentary                                                       | bulk     |
    | anything else                                                    | default  |

    The reader's raises wait in a lane of their own, after the keywords': in a burst it also
    raises many of the event's own reports, and those must not delay a cry the keywords know."""
    folded = fold(text if isinstance(text, str) else "")
    keyword_threat = life_threat(folded)
    reader_threat = not keyword_threat and reader is not None and reader.reads_critical(folded)
    if folded.startswith(("rt ", "qt ")):
        # Someone else's words passed on: the original is triaged on its own, but a passed-on
        # cry for help may be the only copy that reaches us, so it does not wait with the bulk.
        return Lane.default.value if keyword_threat or reader_threat else Lane.bulk.value
    if keyword_threat:
        return Lane.critical.value
    commentary = is_amplification(folded)
    if _WEAK_THREAT.search(folded) and (is_dm or not commentary):
        return Lane.critical.value
    if reader_threat:
        return Lane.urgent.value
    if is_dm:
        # A DM to the handle is addressed to us personally: never treated as commentary.
        return Lane.default.value
    return Lane.bulk.value if commentary else Lane.default.value


class LanePicker:
    """`lane_for` with the learned reader, as the intake calls it: one per process."""

    def __init__(self, reader: LaneModel | None) -> None:
        self.reader = reader

    def __call__(self, text: str, is_dm: bool = False) -> str:
        return lane_for(text, is_dm, self.reader)
