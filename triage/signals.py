"""Phrase-level signals and the safety-net rules that sit under the model.

Signals: weapon, people_trapped, child_or_vulnerable, timing (ongoing/past), figurative, silent
and covert requests. Safety-net rules name life-threat phrases: they may raise urgency, never
lower it, unless the post is plainly figurative (then they only add a reason).
"""
from __future__ import annotations

import re
from functools import lru_cache

from models.enums import Urgency
from triage.base import SafetyRule
from triage.other_languages import ADDRESS, OTHER_LANGUAGE_RULES, PLEA, SILENT_OTHER

_I = re.I
WEAPON = re.compile(r"\b(knife|knives|knifepoint|machete|gun|guns|gunman|rifle|pistol|shotgun|"
                    r"firearm|armed|blade|razor|hammer|bat|bats|axe|crowbar|acid|broken bottle)\b", _I)
TRAPPED = re.compile(r"\b(trapped|stuck (?:inside|in (?:the|a|my|our)|on the roof)|can'?t get out|"
                     r"cant get out|pinned|under the rubble|locked in|on the roof)\b", _I)
VULNERABLE = re.compile(
    r"\b(baby|babies|toddler|infant|newborn|child|children|kid|kids|son|daughter|boy|girl|"
    r"\d{1,2}\s?(?:yo|year old|yr old)|elderly|pensioner|nan|nana|grandma|grandad|grandpa|"
    r"dementia|alzheimer'?s|pregnant|disabled|wheelchair|autistic|vulnerable)\b", _I)
ONGOING = re.compile(r"\b(right now|now|just now|currently|still|happening|at the moment|as we "
                     r"speak|is (?:on fire|burning|bleeding)|are (?:trapped|stuck)|just)\b", _I)
PAST = re.compile(r"\b(yesterday|last (?:night|week|month|year)|\d+ (?:days|weeks|months|years) "
                  r"ago|earlier today|was (?:stolen|broken)|from last)\b", _I)
FIGURATIVE = re.compile(
    r"\b(lol|lmao|lmfao|rofl|haha\w*|jk|jaja\w*|hehe|literally dying|killing me|dying to|"
    r"could murder|i'?d kill for|kill for a|send help|is a crime|daylight robbery|"
    r"straight fire|is fire|on fire today|slay\w*|fr|ngl|(?:nearly|almost) had a heart attack|"
    r"giv(?:e|es|ing) me a heart attack|(?:heat|weather|exams?|homework|deadline|hangover|commute|"
    r"traffic|this (?:heat|job|week|song|game)|work|my boss) (?:is |are )?(?:going to|gonna) kill me)\b",
    _I)
# What separates "high" from "critical" is often a reassurance the poster gives: the person is
# breathing or talking, everyone got out, the attacker has gone, nobody is hurt. A model feature
# (the heads learn how much it lowers critical) and a stated reason; never a safety-net rule.
MITIGATION = re.compile(
    r"\b(?:he|she|they|he'?s|she'?s|they'?re|is|are|still|but)\s+(?:still\s+)?(?:is\s+)?"
    r"(?:breathing|conscious|talking|awake|alert|responsive|sitting up|ok|okay|fine|alright)\b|"
    r"\b(?:breathing|conscious) (?:fine|normally|ok|okay|and (?:talking|breathing|awake))\b|"
    r"\b(?:nobody|no one|noone|no-one|none of us)(?:'?s| is| was| got| has been| seems)?\s+"
    r"(?:hurt|injured|inside|in there|home|in the (?:house|flat|car|building))\b|"
    r"\b(?:everyone|everybody|we|we'?re|they|they'?re|all)(?:'?s| is| are| have| has)?\s+(?:all\s+)?"
    r"(?:got out|out safe|safe|outside now|out of the (?:house|flat|building))\b|"
    r"\b(?:he|she|they|he'?s|she'?s|they'?re|they'?ve)(?: has| have)? (?:gone|left)(?: now| for now|"
    r" the (?:house|flat|area|scene)|,|\.|$)|"
    r"\bfire(?:'?s| is) (?:out|been put out)\b|\bput (?:it|the fire) out\b|"
    r"\bnot (?:in (?:any )?danger|an emergency|urgent|life.threatening|hurt|injured)\b", _I)
# Threat-to-life findings a dispatcher's protocol asks about that the safety-net rules do not name
# one by one (posture, colour, breathing effort): model features, not decisions.
THREAT_CUE = re.compile(
    r"\b(?:passed out|collapsed|not moving|isn'?t moving|won'?t move|limp|floppy|gone (?:grey|gray|"
    r"white|blue|cold|quiet)|struggling to breathe|gasping|can'?t get (?:his|her|their|my) breath|"
    r"blood everywhere|lots of blood|pool of blood|head injury|fitting|convulsing|"
    r"face (?:has )?(?:dropped|drooping|droopy)|slurr\w+|went under|gone under|under the water|"
    r"in the water|snatched|kidnapp\w+|abduct\w+|won'?t let me (?:go|leave)|locked me in|"
    r"threatening to (?:kill|stab|shoot|jump)|has a (?:weapon|blade)|swallowed|took an overdose|not answering (?:me|us))\b", _I)
# A quoted lyric or line is not the poster's own situation.
QUOTED = re.compile(r"[\"“][^\"”]{8,}[\"”]")
SILENT = re.compile(
    r"\b(can'?t|cant|cannot|unable to|not able to|don'?t|dont) (?:talk|speak|call|make noise|"
    r"say more|ring)\b|\bdon'?t (?:call|ring|reply)(?: back)?\b|\bdont (?:call|reply)\b|"
    r"\b(?:he|she|they)(?: checks| reads| listens| will hear| could hear|'ll hear)\b|"
    r"\bhiding\b|\bwhisper\w*\b|\bshh+\b|"
    # People typing where they must not be heard.
    r"\b(?:can'?t|cant|cannot|unable to) (?:phone|use the phone)\b|\btext only\b|"
    r"\b(?:texting|typing|messaging)(?: this)? (?:because|cos|cause|coz|as|so|in|under|from)\b|"
    r"\b(?:he|she|they)(?:'?ll| will| would| could| might)? (?:see|hear|know) if i\b|"
    r"\bif i make a (?:sound|noise)\b|\b(?:too )?scared to (?:say|speak|call|shout|scream)\b|"
    r"\b(?:checks|checking|has|grabbed|taken away|took away) my phone\b|\busing (?:my |a |the |her |"
    r"his )?\w+(?:'?s)? (?:ipad|laptop|computer|tablet|phone)\b|\bif (?:he'?s|she'?s|he is|"
    r"she is) reading this\b|"
    r"\b(?:i'?m|im|we'?re|were|i am|we are|hiding) (?:in|under) (?:the |my |our )(?:bathroom|loo|"
    r"toilet|cupboard|wardrobe|closet|loft|attic|basement|shed|room)\b|\bunder the bed\b", _I)
# People who cannot use a voice call; silent unless they are asking how the service works
# ("can I text 999 if I'm deaf?").
CANNOT_VOICE = re.compile(r"\b(?:deaf|non-?\s?verbal|mute|hard of hearing|speech impair\w*)\b", _I)
_SERVICE_QUESTION = re.compile(r"\?|\b(?:how (?:do|can|does)|can i|do you|is there|register)\b")
# "order a pizza to 12 oak st": the known covert pattern for someone who cannot speak freely.
COVERT = re.compile(r"\b(pizza|taxi|delivery|deliver\w*|order)\b.{0,40}\bto\s+(?:flat\s+)?\d+", _I)
COVERT_TAIL = re.compile(r"\b(he'?s|he is|she'?s|they'?re) (?:still )?(?:here|asleep|downstairs|"
                         r"next door|in the next room|home)\b|\bcan'?t say more\b|\basap\b|"
                         r"\bneed it now\b|\b(?:please )?hurry\b|\bquickly\b|\b(?:he|she|they)(?:'?s| has| have)"
                         r" (?:got )?(?:the |a )?(?:knife|gun|blade)\b|\bhe'?s got\b", _I)


SAFETY_RULES = [
    SafetyRule("critical", "medical", re.compile(
        r"\b(not breathing|isn'?t breathing|isnt breathing|stopped breathing|no pulse|"
        r"can'?t breathe|cant breathe|unconscious|unresponsive|not responding|won'?t wake|"
        r"wont wake|heart attack|cardiac arrest|overdos\w*|choking|seizure|stroke|"
        r"bleeding (?:badly|heavily|out|a lot)|going blue|lips are (?:blue|purple)|"
        r"throat (?:closing|swelling)|doing cpr|chest compressions)\b", _I)),
    SafetyRule("critical", "self_harm", re.compile(
        r"\b(kill myself|end(?:ing)? it all|end my life|suicid\w*|want to die|going to jump|"
        r"hang (?:myself|himself|herself)|taken (?:all|everything)|took (?:all|a load|loads) of (?:my|the|his|her|them)\b|took (?:them|it) all|"
        r"cut too deep|last post|goodbye everyone)\b", _I)),
    SafetyRule("critical", "violence", re.compile(
        r"\b(stabbed|stabbing|been shot|got shot|shots fired|shooting at|active shooter|gunman|"
        r"(?:has|with|got) a (?:gun|knife|machete|rifle)|going to kill (?:me|us|her|him)|"
        r"he'?ll kill|kill us|being attacked|strangling|choking (?:me|her|him|my))\b", _I)),
    SafetyRule("critical", "fire", re.compile(
        r"\b((?:house|flat|building|home|apartment|kitchen|car|block) (?:is )?on fire|"
        r"trapped.{0,30}(?:fire|smoke)|(?:fire|smoke).{0,40}(?:trapped|can'?t get out|"
        r"cant get out|still inside|inside)|people at windows)\b", _I)),
    SafetyRule("critical", "hazard", re.compile(
        r"\b(swept (?:away|off)|drowning(?! in (?:emails?|work|homework|debt|paperwork))|"
        r"under the rubble|fell through the ice|water (?:is )?rising|"
        r"carbon monoxide|passed out.{0,20}gas)\b", _I)),
    SafetyRule("critical", "missing_person", re.compile(
        r"\b(child|kid|son|daughter|toddler|\d{1,2} ?(?:yo|year old)).{0,40}\b(missing|taken|gone missing|"
        r"got into a stranger)|\bamber alert\b", _I)),
    SafetyRule("high", "crime", re.compile(
        r"\b(break(?:ing)? in|broke in|burglar\w*|intruder|someone in my house|robbed|mugged|"
        r"following me)\b", _I)),
    SafetyRule("high", "traffic", re.compile(
        r"\b(crash|collision|car accident|hit by a (?:car|bus|lorry|van)|pile-?up|run over|"
        r"knocked off)\b", _I)),
    SafetyRule("high", "hazard", re.compile(
        r"\b(gas leak|smell of gas|gas smell|smell gas|power lines? down|live wire|explosion)\b", _I)),
]


_NAMED_PATTERNS = {"weapon": WEAPON, "people_trapped": TRAPPED, "child_or_vulnerable": VULNERABLE,
                   "ongoing": ONGOING, "past": PAST, "figurative": FIGURATIVE, "quoted": QUOTED,
                   "silent": SILENT, "covert": COVERT, "covert_tail": COVERT_TAIL,
                   "mitigation": MITIGATION, "threat_cue": THREAT_CUE, "cannot_voice": CANNOT_VOICE}


def _lowercase_twin(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The same pattern without IGNORECASE, to run on lower-cased text: the patterns are written
    case-insensitively for readability, but case-folding inside the regex engine made them about
    2.4 times slower."""
    return re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)


_FAST_NAMED = {name: _lowercase_twin(p) for name, p in _NAMED_PATTERNS.items()}
_FAST_SAFETY = [(rule, _lowercase_twin(rule.pattern)) for rule in SAFETY_RULES]


@lru_cache(maxsize=4096)
def _evidence(text: str) -> tuple[dict[str, str | None], tuple[tuple[SafetyRule, str], ...],
                                  tuple[tuple[SafetyRule, str], ...]]:
    """Every pattern searched once per text: (named signals, safety-rule hits, net-only hits).
    Features, signals, silent and the safety net all read the same matches, and a batch asks
    about each text several times. Quoted phrases come back lower-cased."""
    low = text.lower()
    found = {}
    for name, pattern in _FAST_NAMED.items():
        m = pattern.search(low)
        found[name] = m.group(0) if m else None
    if not found["silent"] and found["cannot_voice"] and not _SERVICE_QUESTION.search(low):
        found["silent"] = found["cannot_voice"]
    hits = tuple((rule, m.group(0)) for rule, pattern in _FAST_SAFETY if (m := pattern.search(low)))
    net = tuple((rule, m.group(0)) for rule, pattern in _FAST_NET if (m := pattern.search(low)))
    return found, hits, net


def evidence_words(text: str) -> dict[str, str | None]:
    """The words each named signal pattern matched (None where it did not), lower-cased."""
    return _evidence(text)[0]


_SIGNAL_LABELS = {"threat_cue": "threat-to-life cue", "mitigation": "reassurance"}


def find_signals(text: str, laugh_emoji: int = 0) -> tuple[dict, list[str]]:
    """(signals, reasons) from phrases in the normalised text."""
    found = _evidence(text)[0]
    signals: dict = {}
    reasons: list[str] = []
    for key in ("weapon", "people_trapped", "child_or_vulnerable", "threat_cue", "mitigation"):
        signals[key] = found[key] is not None
        if found[key]:
            reasons.append(f"{_SIGNAL_LABELS.get(key, key.replace('_', ' '))}: '{found[key]}'")
    signals["timing"] = "ongoing" if found["ongoing"] else ("past" if found["past"] else "unknown")
    signals["figurative"] = bool(found["figurative"] or found["quoted"] or laugh_emoji)
    if found["figurative"]:
        reasons.append(f"figurative/joking marker: '{found['figurative']}'")
    elif found["quoted"]:
        reasons.append("quoted line (lyric or quotation), not the poster's own words")
    elif laugh_emoji:
        reasons.append("laughing emoji")
    return signals, reasons


def silent_contact(text: str) -> tuple[bool, str]:
    """(silent, why): the person says they cannot speak or call, or uses a covert request."""
    found = _evidence(text)[0]
    if found["silent"]:
        return True, f"'{found['silent']}' → cannot speak or call"
    if m := SILENT_OTHER.search(text):
        return True, f"'{m.group(0)}' → cannot speak or call"
    if found["covert"] and found["covert_tail"]:
        return True, f"covert request '{found['covert']}' → treat as a silent call for help"
    return False, ""


# Further safety-net rules: they only ever raise a decision. The heads see only whether one of
# them fired (features net_critical / net_high), so a rule can be added without changing the
# feature layout; retrain so the heads learn how far to trust it.
NET_ONLY_RULES = [
    # Findings that call-taking protocols treat as immediately life-threatening whatever words
    # surround them: stroke (face, arm, speech), anaphylaxis, a person gone under water, a child
    # taken, a vehicle driven into people.
    SafetyRule("critical", "medical", re.compile(
        r"\b(?:face (?:has )?(?:dropped|drooping|droopy|gone droopy)|(?:can'?t|cannot|cant) lift "
        r"(?:his|her|their|my) (?:arm|right arm|left arm)|(?:tongue|throat|face) (?:is |are )?"
        r"(?:swelling|swollen)|lips (?:are )?(?:swelling|swollen)|epi-?pen)\b", _I)),
    SafetyRule("critical", "hazard", re.compile(
        r"\b(?:went|gone|going|goes) under(?! (?:the (?:bridge|table|bed|stairs)|anaesthetic))|"
        r"(?:hasn'?t|has not|didn'?t|not) (?:come|came) (?:back )?up\b|rip ?(?:tide|current)|"
        r"(?:in|into) the (?:water|river|sea|canal|lake|reservoir) and (?:can'?t|cant|not|struggling)", _I)),
    SafetyRule("critical", "missing_person", re.compile(
        r"\b(?:(?:child|kid|son|daughter|baby|toddler|girl|boy)\b(?:(?!phone|bag|purse|wallet|bike|car|"
        r"keys|watch|necklace|chain).){0,25}\bsnatched|snatched (?:a|my|the|our) (?:child|kid|son|"
        r"daughter|baby|girl|boy|little)|(?:been|was|being|just) (?:kidnapped|abducted)|"
        r"(?:kidnapped|abducted|kidnapping|abducting) (?:my|our|me|her|him|a (?:child|girl|boy|woman))|"
        r"(?:grabbed|took|taken|bundled) (?:my|a|the|our) "
        r"(?:child|kid|son|daughter|baby|girl|boy|little)|in the boot of)\b", _I)),
    SafetyRule("critical", "violence", re.compile(
        r"\b(?:drove|driven|ploughed|plowed|crashed) (?:a (?:car|van|truck|lorry) )?(?:into|through) "
        r"(?:the |a )?(?:crowd|people|pedestrians)\b", _I)),
    SafetyRule("critical", "self_harm", re.compile(
        r"\b((?:going to|gonna|want to|will|about to) end it(?! with)|end it (?:tonight|now|today)|"
        r"won'?t (?:be here|wake up) tomorrow|(?:saved|saving) up (?:my )?(?:pills|tablets))\b", _I)),
    SafetyRule("critical", "fire", re.compile(
        r"\b(?:i can see|we can see|can see|seeing|there are) (?:flames|smoke and flames)\b", _I)),
    # More findings from call-taking protocols, in the words people type.
    SafetyRule("critical", "medical", re.compile(
        r"\b(?:(?:he|she|they|he'?s|she'?s|they'?re|hes|shes) (?:is |are )?not mov(?:ing|in)\b|"
        r"(?:hasn'?t|has not) moved\b|chest pains?\b|pain (?:down|in) (?:my|his|her) (?:left )?arm|"
        r"spurting|blood everywhere|pool of blood|lots of blood|"
        r"took \d+ (?:of (?:my|his|her|the) )?\w*\s?(?:pills|tablets|paracetamol|antidepressants|"
        r"sleeping pills|painkillers))", _I)),
    SafetyRule("critical", "violence", re.compile(
        r"\b(?:tied (?:me |him |her |them |us )?up|held (?:at )?(?:hostage|gunpoint|knifepoint)|"
        r"hostage|won'?t let (?:me|her|him|us) (?:go|leave)|dragg(?:ing|ed) (?:a |the )?(?:woman|"
        r"man|girl|boy|her|him|me) (?:into|in)|stamp(?:ing|ed) on|(?:pouring|poured) petrol|"
        r"petrol (?:through|in) (?:the|our|my) (?:letterbox|door)|"
        r"(?:hit|ploughed into|drove into) (?:a (?:group|crowd) of )?people)\b", _I)),
    SafetyRule("critical", "fire", re.compile(
        r"\b(?:smoke everywhere|(?:door|handle) (?:is )?(?:too )?hot to touch|"
        r"smoke (?:is )?(?:filling|coming under|under) (?:the|our|my) (?:room|door|flat))\b", _I)),
    SafetyRule("critical", "self_harm", re.compile(
        r"\b(?:(?:texted|messaged|sent) (?:me |us )?(?:a )?goodbye|(?:said|saying) goodbye to "
        r"(?:me|us|everyone|everybody)|suicide note|this is (?:my )?goodbye(?! to)|"
        r"goodbye (?:letters?|notes?)|"
        r"this (?:is|will be|'ll be|is going to be) (?:my |the )?last (?:tweet|post|message|text|skeet)|"
        r"(?:wrote|written|left) (?:a |my |his |her )?(?:note|notes) and)\b", _I)),
    SafetyRule("critical", "violence", re.compile(
        r"\b(?:(?:someone|somebody|some ?one|a (?:man|guy|gunman)|(?:he|she|they))(?:'?s|'?re| is| are)? "
        r"(?:is |are )?shooting(?! (?:a |an |the |some |my |hoops|stars|pool|video|film|photo|"
        r"pictures?|the breeze|up|for|hoops))|drag (?:me|her|him|us) (?:into|in)|"
        r"(?:said|says|threatened|threatening|swore) (?:that )?(?:he'?d|he would|he will|she'?d|"
        r"they'?d|to) kill (?:me|us|her|him))\b", _I)),
    SafetyRule("critical", "hazard", re.compile(
        r"\b(?:went (?:back )?in(?:to the (?:water|house|fire|flat|river|sea|building))? (?:after|for) |"
        r"people (?:are )?(?:trapped )?under (?:it|the|a)\b|"
        r"(?:car|van|truck|pickup|vehicle|bus|lorry) (?:has )?(?:went|gone|drove|driven|crashed|rolled|"
        r"slid) (?:off (?:the |a )?\w+ )?into (?:the |a )?(?:river|creek|canal|lake|sea|water|"
        r"reservoir|harbour|harbor|dock)|(?:ran|run|wandered|walked|gone) off.{0,30}\b(?:river|"
        r"canal|lake|sea|water|quarry|railway|motorway|cliffs?)\b)", _I)),
    SafetyRule("critical", "fire", re.compile(
        r"\b(?:cut off by (?:the )?(?:bush|wild|grass|forest)?fire|flames (?:on )?both sides|"
        r"surrounded by (?:fire|flames|smoke)|(?:someone|a man|a woman|a person|people|kids?|"
        r"children|a child) (?:is |are )?(?:banging|screaming|waving|shouting) (?:on|at|from) "
        r"(?:the |an? )?(?:upstairs |top |bedroom |front )?windows?)\b", _I)),
    SafetyRule("critical", "medical", re.compile(
        r"\b(?:(?:face|lips|skin|he'?s|she'?s|he is|she is|has) (?:gone|going|turned) (?:grey|gray|"
        r"blue|purple)|chest (?:hurts|is (?:tight|hurting|crushing))|tight chest|crushing chest|"
        r"(?:won'?t|will not|wont|can'?t|cannot|cant) stop (?:the )?bleeding)\b", _I)),
    SafetyRule("critical", "self_harm", re.compile(
        r"\b(?:(?:going to|gonna|will|about to) take (?:them |it )?all|take all (?:of )?(?:my|the) "
        r"(?:pills|tablets|meds))\b", _I)),
    *OTHER_LANGUAGE_RULES,
    # A plea to the emergency account with nothing else to go on ("help", "please help me",
    # "sos") is never "not an emergency": a dispatcher must look at it.
    SafetyRule("high", "other", re.compile(
        r"^\W*(?:[@#]\w+\W*)*(?:(?:please|pls|someone|somebody)\W*)*"
        r"(?:help|sos|help me|help us|send help|need help|i need help|we need help)"
        r"(?:\W*(?:me|us|now|please|pls|asap|quick|quickly|fast))*\W*$|"
        r"\b(?:please|pls|someone|somebody) help (?:me|us)\b|\bsend help\b|\bhelp me please\b", _I)),
]
_FAST_NET = [(rule, _lowercase_twin(rule.pattern)) for rule in NET_ONLY_RULES]


def street_address(text: str) -> str:
    """The street address (or UK postcode) the post gives, in any supported language; else ""."""
    m = ADDRESS.search(text)
    return m.group(0) if m else ""


def plea_with_address(text: str) -> str:
    """The plea (or safety-net phrase), when the post gives a street address and asks for help
    in any supported language; else ""."""
    if not ADDRESS.search(text):
        return ""
    if m := PLEA.search(text):
        return m.group(0)
    hits = safety_net(text)
    return hits[0][1] if hits else ""


def safety_net(text: str) -> list[tuple[SafetyRule, str]]:
    """All life-threat / serious rules that fire, most urgent first."""
    _, hits, net = _evidence(text)
    hits = list(hits) + list(net)
    return sorted(hits, key=lambda h: Urgency(h[0].urgency).rank)


FEATURE_NAMES = ([f"rule_{r.urgency}_{r.category}" for r in SAFETY_RULES] +
                 ["silent", "covert", "figurative", "quoted", "weapon", "people_trapped",
                  "child_or_vulnerable", "ongoing", "past", "question", "has_address_number",
                  "mitigation", "threat_cue", "net_critical", "net_high"])
_QUESTION = re.compile(r"\?|\b(how|what|where|when|who|which|is there|can i|do i|should i|does)\b")
_ADDRESS_NUMBER = re.compile(r"\b\d{1,4}[a-z]?\s+[a-z]+\s+(?:st|rd|ave|lane|road|street|close|"
                             r"drive|way|terrace|court|grove|gardens|crescent)\b")  # on lower-cased text


def signal_features(text: str) -> list[float]:
    """Phrase evidence as 0/1 features next to the embedding: lets the heads learn how much to
    trust each rule instead of the rules alone deciding."""
    found, hits, net_hits = _evidence(text)
    low = text.lower()
    fired = {id(rule) for rule, _ in hits}
    values = [1.0 if id(r) in fired else 0.0 for r in SAFETY_RULES]
    values += [float(bool(x)) for x in (
        found["silent"], found["covert"] and found["covert_tail"], found["figurative"],
        found["quoted"], found["weapon"], found["people_trapped"], found["child_or_vulnerable"],
        found["ongoing"], found["past"], _QUESTION.search(low), _ADDRESS_NUMBER.search(low),
        found["mitigation"], found["threat_cue"])]
    net = [rule.urgency for rule, _ in net_hits]
    values += [float("critical" in net), float("high" in net)]
    return values
