"""Generator: an explosion in central Manchester, and lone cries for help elsewhere in the middle of it.

`burst_scenario(n_burst, n_unrelated, seconds, seed)` returns sandbox scenario entries (offset,
platform, text, author, lat/lon) — eyewitness reports with varied wording near the blast,
requests for help near it, commentary, prayers and retweets — and `n_unrelated` unrelated
critical posts (other towns or no place at all) at random moments. The unrelated posts are
marked by their author prefix (UNRELATED_AUTHOR) so a benchmark or test can follow them.
Self-contained (standard library only) so tests can load it from the source tree.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

BLAST = (53.4774, -2.2309)  # Piccadilly, Manchester
UNRELATED_AUTHOR = "lone_caller_"
QUIET_AUTHOR = "quiet_caller_"

_PLACES_NEAR = ["Piccadilly", "Piccadilly station", "London Road", "the station in Manchester",
                "Manchester city centre", "Piccadilly Gardens, Manchester", "Ancoats", "Manchester"]
_BANG = ["huge explosion", "massive blast", "loud explosion", "explosion", "massive bang",
         "enormous explosion", "big explosion", "blast"]
_EFFECTS = ["windows blown out", "smoke everywhere", "glass all over the road", "building on fire",
            "flames coming out of a building", "people running", "car alarms going off",
            "the whole street shook", "thick black smoke", "debris everywhere", "sirens everywhere"]
_OPENERS = ["", "just now ", "omg ", "", "right now ", "", "wow ", "", "seriously "]
_WITNESS = [
    "{o}{bang} near {place}, {effect}",
    "{o}there's been a {bang} at {place}!! {effect}",
    "{o}{bang} just went off by {place}. {effect}",
    "{o}heard a {bang} from {place}, {effect}",
    "{o}{place}: {bang}, {effect} {tail}",
    "{o}{effect} after a {bang} at {place}",
    "{o}a {bang} outside {place}, {effect}. stay away",
]
_TAILS = ["", "stay away", "avoid the area", "", "police arriving", "", "fire brigade on the way"]
_HELP_NEAR = [
    "I'm trapped in the building next to {place} after the explosion, please send help",
    "my friend is bleeding badly near {place}, need an ambulance",
    "we're stuck inside on the 2nd floor at {place}, the stairs are gone, help",
    "there's a man unconscious on the pavement at {place} after the blast",
    "please help, my leg is trapped under rubble by {place}",
    "someone is badly hurt outside {place}, they can't breathe properly with the smoke",
]
_COMMENTARY = [
    "what was that bang?? {place}", "anyone know what happened in Manchester?",
    "did anyone else hear that in Manchester", "what's going on at {place}??",
    "heard the bang from miles away, what happened", "so scary, what was that noise",
    "breaking: reports of an explosion in Manchester", "live updates on the Manchester blast anyone?",
    "omg the noise from town just now", "the news says explosion in Manchester city centre",
]
_PRAYERS = [
    "praying for everyone in Manchester", "thoughts with everyone at {place}",
    "stay safe Manchester", "sending love to everyone affected in Manchester",
    "praying nobody is hurt at {place}", "thinking of everyone near {place} tonight",
]
_UNRELATED = [
    ("my mum can't breathe, we're at {addr}, {town}", "medical"),
    ("my dad has collapsed and isn't breathing, {addr} {town}, please help", "medical"),
    ("help, someone is breaking into my house at {addr} in {town}", "crime"),
    ("my son took too many pills, {town}, {addr}. please send an ambulance", "medical"),
    ("I've been stabbed outside {addr}, {town}", "violence"),
    ("my baby is choking and not breathing properly, {addr} {town}", "medical"),
    ("kitchen on fire and my nan is upstairs, {addr}, {town}", "fire"),
    ("my wife is having a seizure and won't wake up, please help", "medical"),
    ("there's a man with a knife outside my flat, I'm hiding in the bathroom", "violence"),
    ("my grandad has fallen and is bleeding from his head and not responding", "medical"),
]
# Lone cries for help that the intake keyword pre-screen (triage/prescreen.py) does not recognise:
# plain wording, typos, and other languages. Only the model can tell these are life-threatening,
# so how fast they reach a dispatcher measures the model's path, not the keyword list's.
_QUIET = [
    "neighbours kid is hanging off the fourth floor balcony rail at Kelham Court",
    "theres a man floating face down in the canal by the lock gates at Sowerby Bridge",
    "se cayó al río un niño pequeño en el puente de Triana y la corriente se lo lleva",
    "ma fille a avalé toute une boîte de médicaments, elle ne répond plus, 3 rue Victor Hugo",
    "mein Vater ist umgekippt und atmet kaum noch, Hauptstraße 8 in Bonn",
    "mój syn spadł z drabiny i ma sine usta, ulica Polna 9",
    "ammi gir gayi hai aur hosh nahi aa raha, saans bhi mushkil se le rahi hai, jaldi koi bhejo",
    "mae fy nhad wedi cwympo ar y grisiau a does dim ymateb ganddo",
    "ابني ابتلع مادة تنظيف وصار يتقيأ دم",
    "smoke is pouring under my door and i cant get the window open, 4th floor Aston Court",
    "someone set fire to the letterbox and the hallway's full of smoke, my nan's upstairs at 8 Vine St",
    "a car just rolled into the reservoir with a woman still inside it, Rivington Road",
    "my little boy swallowed a button battery and now hes throwing up blood",
    "lad at the bus stop on Mill Hill just dropped and his lips have gone purple",
    "gas cooker blew up in the kitchen, my mums arms are all burnt and shes screaming",
    "my ex got in through the back door and hes locked himself upstairs with my kids, 7 Rose Close",
    "my sister slit her wrists in the bath, theres so much blood",
    "we're on the roof, water is up to the gutters, three kids with us, Sandy Lane Tewkesbury",
    "baby fell in the bath and came up grey, she's gasping, 3 Kirk Lane",
    "my girlfriend injected all her insulin at once and now shes shaking and wont answer me",
    "hilfe, mein Kind ist in den Pool gefallen und bewegt sich nicht mehr",
    "o meu pai caiu da escada e não acorda, rua das Flores 30",
    "mio figlio è caduto dal balcone e non si muove, via Roma 4",
    "bhai ne chuha maar dawa pee li, ulti kar raha hai aur aankhen band ho rahi hain",
]
_TOWNS = {"Leeds": (53.7965, -1.5479), "Sheffield": (53.3811, -1.4701), "Bristol": (51.4545, -2.5879),
          "Liverpool": (53.4084, -2.9916), "Newcastle": (54.9783, -1.6178),
          "Nottingham": (52.9548, -1.1581), "Leicester": (52.6369, -1.1398),
          "Cardiff": (51.4816, -3.1791), "Birmingham": (52.4862, -1.8904), "York": (53.9590, -1.0815)}
_STREETS = ["Oak Road", "Station Street", "Mill Lane", "Church Street", "Victoria Road", "Park Avenue",
            "High Street", "Elm Grove", "Queens Road", "Chapel Street"]


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    text: str
    author: str
    kind: str  # witness, help_near, commentary, prayer, retweet, unrelated
    lat: float | None = None
    lon: float | None = None
    platform: str = "x"

    def as_json(self) -> dict:
        out = {"at": round(self.at, 3), "platform": self.platform, "text": self.text, "author": self.author}
        if self.lat is not None:
            out.update(lat=self.lat, lon=self.lon)
        return out


def _near(rng: random.Random, centre: tuple[float, float], metres: float) -> tuple[float, float]:
    r, angle = metres * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    dlat = r * math.cos(angle) / 111_320
    dlon = r * math.sin(angle) / (111_320 * math.cos(math.radians(centre[0])))
    return round(centre[0] + dlat, 6), round(centre[1] + dlon, 6)


def _burst_post(rng: random.Random, i: int, witnesses: list[tuple[str, str]]) -> Entry:
    roll = rng.random()
    place = rng.choice(_PLACES_NEAR)
    author = f"mcr_{i}"
    geotag = rng.random() < 0.5
    where = _near(rng, BLAST, 400) if geotag else (None, None)
    if roll < 0.36:
        text = rng.choice(_WITNESS).format(o=rng.choice(_OPENERS), bang=rng.choice(_BANG), place=place,
                                           effect=rng.choice(_EFFECTS), tail=rng.choice(_TAILS)).strip()
        witnesses.append((author, text))
        return Entry(0.0, text, author, "witness", *where)
    if roll < 0.40:
        where = _near(rng, BLAST, 300) if rng.random() < 0.8 else (None, None)
        return Entry(0.0, rng.choice(_HELP_NEAR).format(place=place), author, "help_near", *where)
    if roll < 0.64:
        return Entry(0.0, rng.choice(_COMMENTARY).format(place=place), author, "commentary", *where)
    if roll < 0.80 or not witnesses:
        return Entry(0.0, rng.choice(_PRAYERS).format(place=place), author, "prayer")
    original_author, original = rng.choice(witnesses[-200:])
    return Entry(0.0, f"RT @{original_author}: {original}", author, "retweet")


def _unrelated_post(rng: random.Random, i: int) -> Entry:
    template, _kind = _UNRELATED[i % len(_UNRELATED)]
    town = rng.choice(list(_TOWNS))
    addr = f"{rng.randint(2, 180)} {rng.choice(_STREETS)}"
    text = template.format(addr=addr, town=town)
    # A third geotagged in their town, the rest only say where (or nowhere) in the text.
    lat, lon = _near(rng, _TOWNS[town], 1500) if i % 3 == 0 and "{town}" in template else (None, None)
    return Entry(0.0, text, f"{UNRELATED_AUTHOR}{i}", "unrelated", lat, lon)


def burst_scenario(n_burst: int = 16_000, n_unrelated: int = 20, seconds: float = 60.0,
                   seed: int = 999, n_quiet: int = len(_QUIET)) -> list[Entry]:
    """Entries sorted by offset; the burst ramps up over the first tenth, then stays high.
    `n_quiet` cries the keyword pre-screen misses (QUIET_AUTHOR) arrive like the unrelated ones."""
    rng = random.Random(seed)
    witnesses: list[tuple[str, str]] = []
    # Ramp: the first reports trickle in, then everyone posts at once.
    times = sorted(seconds * (math.sqrt(rng.random() * 0.01) if i < n_burst // 50 else rng.random())
                   for i in range(n_burst))
    out = []
    for i, at in enumerate(times):  # in time order, so a retweet always follows its original
        e = _burst_post(rng, i, witnesses)
        out.append(Entry(at, e.text, e.author, e.kind, e.lat, e.lon))
    for i in range(n_unrelated):
        # Unrelated cries arrive once the burst is under way (not in its first 5%).
        at = seconds * (0.05 + 0.93 * rng.random())
        e = _unrelated_post(rng, i)
        out.append(Entry(at, e.text, e.author, e.kind, e.lat, e.lon))
    for i in range(n_quiet):
        at = seconds * (0.05 + 0.93 * rng.random())
        out.append(Entry(at, _QUIET[i % len(_QUIET)], f"{QUIET_AUTHOR}{i}", "quiet"))
    return sorted(out, key=lambda e: e.at)
