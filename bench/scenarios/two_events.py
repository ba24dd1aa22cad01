"""Generator: two emergencies at once, a river flood in Swansea and a building collapse in Bradford,
on X, Bluesky and Reddit, with lone cries for help elsewhere in the middle of them.

The same interface as bench/scenarios/burst.py, so `flare bench burst --scenario` replays it:
`burst_scenario(n_burst, n_unrelated, seconds, seed, n_quiet)` returns `Entry`s sorted by offset,
`UNRELATED_AUTHOR` / `QUIET_AUTHOR` prefix the lone cries (the first set worded so the intake
keyword pre-screen puts them in the critical lane, the second so it does not), and `EVENTS`
names the events; every burst entry says which one it reports (`Entry.event`; "" for the few
posts that speak of both at once). An incident that holds reports of two events hides one
emergency inside another: the benchmark counts that as a failure.

How it differs from the Manchester scenario, on purpose:
  - two events 250 km apart; the collapse starts a fifth of the way into the flood, while the
    flood's incident is already surging;
  - all three platforms the sandbox serves: X mentions and DMs, Bluesky posts and chat messages,
    Reddit mentions and private messages; only X posts carry geotags, as on the real platforms;
  - a share in the events' other languages (Welsh in Swansea; Urdu, romanised Urdu/Punjabi and
    Polish in Bradford);
  - few exact duplicates: wording varies (templates, typos, emoji, hashtags, casing), except a
    chain message copied word for word, as people do;
  - replies in threads (X conversations, Bluesky reply refs, Reddit comment replies), a few of
    them speaking of the other event than the post they answer;
  - long posts near each platform's limit (X 280, Bluesky 300 characters, Reddit 10,000);
  - its own lone cries, several of the same kind as the events (a car in flood water, a ceiling
    fallen on someone) in other towns, in plain words and other languages.
Standard library only; the same seed gives the same entries.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

UNRELATED_AUTHOR = "lone_cry_"
QUIET_AUTHOR = "plain_cry_"
EVENTS = ("flood", "collapse")

FLOOD_CENTRE = (51.6402, -3.9363)  # River Tawe at Landore, Swansea
COLLAPSE_CENTRE = (53.8027, -1.7641)  # Lumb Lane, Manningham, Bradford
COLLAPSE_STARTS = 0.2  # share of the replay before the first collapse report
LIMITS = {"x": 280, "bluesky": 300, "reddit": 10_000}

_FLOOD_PLACES = ["Landore", "Hafod", "St Thomas", "Morriston", "Neath Road", "Swansea Vale",
                 "the Tawe", "Plasmarl", "Swansea", "Fabian Way", "Port Tennant", "Swansea Marina",
                 "Abertawe", "Brynhyfryd", "the Liberty Stadium", "Landore Park and Ride"]
_FLOOD_SIGHTS = ["the river's over the wall", "water halfway up the car doors", "manhole covers lifting",
                 "the road is a river", "cars floating down the street", "water pouring into houses",
                 "the underpass is completely under", "brown water everywhere", "people wading waist deep",
                 "the park's a lake now", "sandbags not doing anything", "the bridge is nearly under",
                 "water coming up through the floorboards", "bins and fences washing past"]
_FLOOD_REPORTS = [
    "{sight} at {place}", "{place} right now: {sight}", "never seen {place} like this, {sight}",
    "just walked down to {place} and {sight}", "{sight}. this is {place} 20 mins ago",
    "Tawe has burst its banks near {place}, {sight}", "flooding at {place} is unreal, {sight}",
    "{place} flooded badly, {sight}, don't try to drive through", "update from {place}: {sight}",
    "it's getting worse at {place}, {sight}", "rain hasn't stopped since last night and {sight} in {place}",
]
_FLOOD_HELP = [
    "we're upstairs at {num} {street}, the water's up to the ceiling downstairs and my mum can't do the stairs",
    "my car stalled on {street} by {place} and water is coming in over the seats, I have my two kids with me",
    "elderly neighbour at {num} {street} still inside, water up to the windows, she isn't answering",
    "stuck on the roof of the bus shelter at {place}, current too strong to walk through",
    "man holding onto a lamp post in the water on {street} near {place}, he's getting tired",
    "my dad's care home on {street} {place} is flooding and they can't get the residents out",
]
_FLOOD_STREETS = ["Neath Road", "Pentremawr Road", "Odo Street", "Maliphant Street", "Cwm Road",
                  "Pentre Guinea Road", "Morris Lane", "Foxhole Road", "Cwmbwrla Road"]
_FLOOD_WELSH = [
    "llifogydd ofnadwy yn {place}, mae'r afon dros y ffordd", "mae'r dŵr yn dod i mewn i'r tai yn {place}",
    "mae {place} o dan ddŵr, peidiwch â gyrru yno", "Tawe wedi gorlifo ger {place}, ceir yn arnofio",
    "dwi erioed wedi gweld {place} fel hyn, dŵr ym mhobman", "cadwch draw o {place}, mae'r ffordd fel afon",
    "meddwl am bawb yn {place} heno, gobeithio bod pawb yn saff",
    "ydy pawb yn iawn yn {place}? mae'r dŵr yn codi o hyd",
]
_FLOOD_WELSH_HELP = [
    "rydyn ni'n sownd lan llofft yn {num} {street}, y dŵr yn codi a mam yn methu cerdded",
    "mae hen ddyn yn sownd yn ei gar ar {street}, y dŵr hyd at y ffenestri",
]
_FLOOD_TAGS = ["#SwanseaFloods", "#Abertawe", "#Swansea", "#flooding", "#StormWarning", "#Landore"]

_COLLAPSE_PLACES = ["Lumb Lane", "Manningham", "Manningham Lane", "Bradford", "Oak Lane", "Girlington",
                    "Carlisle Road", "Bradford city centre", "Lister Mills", "Drummond Road", "BD8",
                    "White Abbey Road"]
_COLLAPSE_SIGHTS = ["the whole front of the building came down", "a cloud of dust over the street",
                    "bricks all over the road", "the roof has caved in", "half the block has gone",
                    "people digging with their hands", "the scaffolding pulled the wall down with it",
                    "a massive crash and then dust everywhere", "floors pancaked on top of each other",
                    "the shop on the ground floor is buried", "gas smell near the rubble"]
_COLLAPSE_REPORTS = [
    "{sight} on {place}", "building collapse at {place}, {sight}", "{place}: {sight}",
    "just heard a huge rumble at {place}, {sight}", "old mill building on {place} just collapsed, {sight}",
    "can see it from my window on {place}, {sight}", "{sight}, it's the block on {place}",
    "{place} shut off, {sight}", "people screaming at {place}, {sight}",
]
_COLLAPSE_HELP = [
    "my uncle lives on the top floor of the building that fell down on {place}, his phone rings out",
    "there's someone calling from under the bricks at {num} {street}, we can hear her but can't reach her",
    "my cousin was in the shop downstairs at {place} when it came down, please get someone there",
    "man with his legs pinned under a beam outside {num} {street}, we need people with equipment",
    "kid covered in dust sitting on the kerb on {street}, he's confused and his arm is bent wrong",
]
_COLLAPSE_STREETS = ["Lumb Lane", "Manningham Lane", "Oak Lane", "Carlisle Road", "Drummond Road",
                     "Church Street", "Marlborough Road"]
_COLLAPSE_URDU = [
    "{place} par poori building gir gayi hai, log malbe ke neeche hain",
    "Lumb Lane wali imarat gir gayi, har taraf dhool hi dhool",
    "Allah rehem kare, {place} mein building collapse ho gayi, bachon ko dhoond rahe hain",
    "mere chacha ka ghar usi building mein hai {place} pe, phone nahi utha rahe",
    "بریڈفورڈ میں {place} پر عمارت گر گئی ہے، لوگ ملبے کے نیچے ہیں",
    "{place} पर इमारत गिर गई है, लोग मलबे में फंसे हैं",  # Hindi, read in Bradford too
    "yaar {place} pe koi imarat giri hai kya? bohat zor ki awaaz aayi",
]
_COLLAPSE_POLISH = [
    "na {place} zawalił się budynek, wszędzie pył i gruz", "cały blok na {place} runął, ludzie pod gruzami",
    "widzę z okna, budynek na {place} się zawalił, straż już jedzie",
]
_COLLAPSE_TAGS = ["#Bradford", "#Manningham", "#BradfordCollapse", "#buildingcollapse", "#BD8"]

_COMMENT = {
    "flood": ["is Neath Road even passable now?", "anyone know if the trains from Swansea are running",
              "the council's flood line isn't answering", "how high is the Tawe now, anyone got a gauge reading",
              "saw the drone footage of {place}, unreal", "school in {place} closed because of the water?",
              "my mate says {place} is cut off, true?", "BBC Wales live blog on the floods is up",
              "Swansea flooding again, third time this decade. drains can't cope", "where are the sandbags being handed out in {place}"],
    "collapse": ["is it true a building came down in Bradford?", "police have closed {place} both ways",
                 "anyone know how many were inside the building on {place}?", "drone footage of {place} is awful",
                 "that mill has been empty for years hasn't it? who was in there", "Bradford Royal Infirmary on major incident alert",
                 "road closures around {place} because of the collapse, avoid", "was there building work going on at {place}?",
                 "my cousin heard the crash from {place}, what happened", "live: building collapse in Manningham"],
}
_SUPPORT = {
    "flood": ["thinking of everyone in {place} tonight 💙", "stay safe Swansea, stay off the roads",
              "sending love to everyone flooded out in {place}", "hope everyone at {place} is OK, that water looks terrifying",
              "community centre in {place} is open for anyone flooded out, tea and dry clothes"],
    "collapse": ["praying for everyone at {place}", "thoughts with Manningham tonight", "stay strong Bradford ❤️",
                 "hope they get everyone out at {place}", "mosque on {place} opened its doors for families waiting for news"],
}
_REPLIES = {
    "flood": ["same on {street}, {sight}", "this is my road 😭 {sight}", "can confirm, {sight} at {place}",
              "is everyone in {place} out? my nan's in one of those houses", "water's reached us too, {place}",
              "stay safe, it's worse down by {place}", "yr un peth yma yn {place}, mae'r dŵr yn codi"],
    "collapse": ["I'm on {street}, {sight}", "my friend works in the shop there 😢", "can confirm, {sight} on {place}",
                 "firefighters just arrived on {place}", "is anyone still inside? {sight}",
                 "hamare ghar ke saamne hai yeh, {place}", "widzę to z balkonu, {sight}"],
}
# A chain message, copied word for word by many (the only exact duplicates besides reshares).
_CHAIN = {
    "flood": "PLEASE SHARE: if you are flooded in Swansea and in danger ring 999. Council flood line 01792 636000. "
             "Rest centre open at Morriston Leisure Centre.",
    "collapse": "PLEASE SHARE: anyone looking for family after the Manningham collapse, the reception point is at "
                "the Carlisle Business Centre. Do not go to the site.",
}
_BOTH = [
    "floods in Swansea and a building down in Bradford on the same afternoon, what is going on",
    "Swansea under water and now a collapse in Bradford?? thinking of both",
    "two major incidents in one day, Swansea and Bradford. thoughts with everyone",
    "BBC has a live page for the Swansea floods and the Bradford collapse",
]
# Replies in a thread of one event that report the other (a national thread, a viral post).
_CROSS = {
    "flood": ["meanwhile Swansea is flooding, Landore under a metre of water, people on roofs",
              "and the Tawe's burst its banks in Swansea, St Thomas is cut off"],
    "collapse": ["meanwhile a whole building has come down on Lumb Lane in Bradford, people under it",
                 "my family in Bradford say a building collapsed on Manningham Lane, dust everywhere"],
}
_LONG_SENTENCES = {
    "flood": ["The water started coming up through the drains around {place} just after lunch.",
              "By three o'clock it was over the kerbs and into the front gardens on {street}.",
              "Neighbours have been carrying what they can upstairs, the older ones are struggling.",
              "A few cars tried to drive through by {place} and stalled, the drivers had to wade out.",
              "The river gauge by the bridge was off the scale last time anyone could get near it.",
              "There's no power on half the street now and it's getting dark.",
              "Firefighters were going door to door with a boat at one point but we haven't seen them since.",
              "People are sheltering in the chapel hall, they need blankets and dry clothes.",
              "Someone said the retaining wall by the old works has cracked.",
              "Please don't come down here to look, you're making it harder for the crews."],
    "collapse": ["It happened at about twenty past two, a noise like thunder and then the dust.",
                 "The building on {street} had scaffolding up for weeks, people were living on the upper floors.",
                 "The front wall fell into the road and the floors inside came down on top of each other.",
                 "People from the shops ran over and started pulling at the bricks.",
                 "We could hear someone shouting from inside for a while.",
                 "The police have closed {place} and are moving everyone back because of a gas smell.",
                 "Families are waiting at the corner for news, some of them have been on the phone for an hour.",
                 "Firefighters have brought dogs and cameras in.",
                 "Nobody seems to know how many people were in there.",
                 "Please keep the road clear so the ambulances can get through."],
}
_EMOJI = {"flood": ["🌊", "😱", "😭", "🙏", "💧", "⚠️", "🚒"], "collapse": ["😱", "😭", "🙏", "🚒", "💔", "🏚️", "⚠️"]}

# Lone cries for help elsewhere, worded so the keyword pre-screen (triage/prescreen.py) puts them
# in the critical lane. Two are of the events' own kinds, in other towns.
_LONE = [
    "please help, my husband is not breathing, 19 Cedar Avenue, Norwich",
    "someone has been stabbed outside the chip shop on Castle Street in Exeter",
    "our car is stuck in flood water at the ford in Ripley and it's rising, kids in the back, send help",
    "need an ambulance, my dad collapsed in the garden, 3 Linden Close, Derby",
    "there's an intruder in my house in Plymouth, I'm hiding in the wardrobe",
    "help, my son is bleeding heavily after falling through a glass door, 64 Union Grove, Aberdeen",
    "the ceiling fell in on my nan in her bedroom and she's trapped under it, 15 Rose Hill, Reading",
    "my partner's ex is beating me and won't let me leave the flat, 12 Ash Walk, Swindon",
    "sos car crash on the A9 north of Inverness, driver trapped and bleeding",
    "my baby is fitting and won't stop, please send an ambulance to 8 Morley Road, Belfast",
    "help us, smoke in my flat and the door handle is hot, Ravensworth House, Coventry",
    "help! tân yn y gegin, fire in my kitchen and the kids are upstairs, 4 Heol y Coleg, Bangor",
    "my mum is in labour on the bathroom floor and the baby is coming now, Luton",
    "a man with a knife is in the shop on King Street in Wigan, we're hiding in the back",
    "grandma collapsed at the bus station in Preston and she's not responding, please help",
    "call an ambulance, my brother fell off the scaffolding on Queen Street, Oxford, bleeding from his ear",
    "pomocy! someone is breaking in through the back window, 23 Park Lane, Wolverhampton",
    "help me please, I took a whole bottle of pills and I'm scared now",
    "man drowning in the canal by the Castlefield locks, he went under twice",
    "my flatmate is unconscious and bleeding from the head on the stairs, Flat 2, 40 Derby Road, Nottingham",
]
# Lone cries the pre-screen does not recognise: plain words, typos, other languages.
_QUIET = [
    "my grandad slipped off the weir at Bewdley into the river and we cant see him anywhere",
    "theres a toddler on the window ledge of the third floor flat opposite, 22 Harrow Road, nobodys answering the door",
    "mae babi fy chwaer wedi mynd yn las ac yn llipa, Stryd y Bont, Caernarfon",
    "abbu ke seene mein bohat dard hai aur paseena aa raha hai, Normanton Road Derby",
    "mama upadła w łazience i nie mogę jej dobudzić, ul. Lipowa 5, Slough",
    "mi hermano se tragó algo y se está poniendo morado, no puede toser",
    "mon voisin est tombé du toit, il a la tête en sang et ne parle plus",
    "meine Frau hat plötzlich eine hängende Gesichtshälfte und kann nicht mehr sprechen",
    "copilul meu a băut înălbitor și vomită, Peterborough",
    "babam nefes alamıyor, dudakları morardı, Green Lanes 210 London",
    "زوجي سقط من السلم ولا يتحرك",
    "meri behen ne neend ki saari goliyan kha li hain, utha nahi rahi",
    "আমার বাবা অজ্ঞান হয়ে গেছেন, শ্বাস নিচ্ছেন না",
    "a lorry has gone through the wall of the primary school on Fenton Street, kids were in the yard",
    "my boyfriends gone grey and is making a gurgling noise, cant wake him, flat 3 Wellington Court",
    "car upside down in the ditch on the A30 near Okehampton, someone still in it and its filling with water",
    "old man lying in the snow outside the Co-op on Brook St, not moving, lips blue",
    "my daughter ate a biscuit with nuts in and now her face is puffing up and she sounds strange",
    "husband came in from the garage slurring and cant stand up, the car engine was running in there",
    "bloke just jumped off the pier at Southend and he isnt coming back up",
    "mia madre ha la faccia storta e il braccio non si muove più",
    "mijn vader is van de trap gevallen en reageert niet meer",
    "ο γιος μου έπεσε στη θάλασσα και δεν τον βλέπω πια",
    "dad wedi disgyn yn y gegin, gwaed ym mhobman a dim yn siarad",
]
_LONE_TOWNS = {"Norwich": (52.6309, 1.2974), "Exeter": (50.7184, -3.5339), "Derby": (52.9225, -1.4746),
               "Plymouth": (50.3755, -4.1427), "Aberdeen": (57.1497, -2.0943), "Swindon": (51.5558, -1.7797),
               "Belfast": (54.5973, -5.9301), "Coventry": (52.4068, -1.5197), "Luton": (51.8787, -0.4200),
               "Wigan": (53.5451, -2.6325), "Preston": (53.7632, -2.7031), "Oxford": (51.7520, -1.2577),
               "Nottingham": (52.9548, -1.1581), "Wolverhampton": (52.5862, -2.1288)}


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    text: str
    author: str  # unique per entry: the benchmark follows each post by it
    kind: str  # report, help, comment, support, chain, reshare, reply, cross, long, both, unrelated, quiet
    lat: float | None = None
    lon: float | None = None
    platform: str = "x"
    event: str = ""  # one of EVENTS for a burst post; "" for lone cries and posts about both events
    is_dm: bool = False
    reply_to: str = ""  # the author of the earlier entry this one replies to, in its thread

    def as_json(self) -> dict:
        out = {"at": round(self.at, 3), "platform": self.platform, "text": self.text, "author": self.author}
        if self.lat is not None:
            out.update(lat=self.lat, lon=self.lon)
        if self.is_dm:
            out["is_dm"] = True
        return out


def _around(rng: random.Random, centre: tuple[float, float], km: float) -> tuple[float, float]:
    """A point uniformly within `km` of `centre`."""
    distance, bearing = km * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = centre[0] + distance * math.cos(bearing) / 111.32
    lon = centre[1] + distance * math.sin(bearing) / (111.32 * math.cos(math.radians(centre[0])))
    return round(lat, 6), round(lon, 6)


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    long_words = [n for n, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not long_words:
        return text
    n = rng.choice(long_words)
    w = words[n]
    i = rng.randrange(1, len(w) - 1)
    fault = rng.random()
    if fault < 0.4:
        w = w[:i] + w[i + 1] + w[i] + w[i + 2:]  # swapped letters
    elif fault < 0.7:
        w = w[:i] + w[i + 1:]  # dropped letter
    else:
        w = w[:i] + w[i] + w[i:]  # doubled letter
    words[n] = w
    return " ".join(words)


def _dress(rng: random.Random, text: str, event: str, limit: int) -> str:
    """The ways people write: casing, typos, lost apostrophes, emoji, hashtags, shouting."""
    if rng.random() < 0.25:
        text = text.lower()
    elif rng.random() < 0.04:
        text = text.upper()
    if rng.random() < 0.2:
        text = text.replace("'", "")
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        text = _typo(rng, text)
    if rng.random() < 0.12:
        text += rng.choice(("!!", "!!!", "?!", " ..."))
    if rng.random() < 0.35:
        text += " " + "".join(rng.sample(_EMOJI[event], rng.choice((1, 1, 2, 3))))
    if rng.random() < 0.3:
        tags = _FLOOD_TAGS if event == "flood" else _COLLAPSE_TAGS
        text += " " + " ".join(rng.sample(tags, rng.choice((1, 1, 2))))
    return text[:limit]


def _long(rng: random.Random, event: str, platform: str, place: str, street: str) -> str:
    """A running account, as long as the platform allows (Reddit: thousands of characters)."""
    limit = LIMITS[platform]
    goal = rng.randint(limit - 30, limit) if platform != "reddit" else rng.randint(2_000, limit - 200)
    sentences = _LONG_SENTENCES[event]
    parts: list[str] = []
    size = 0
    while True:
        sentence = rng.choice(sentences).format(place=place, street=street)
        if parts and rng.random() < 0.3:
            sentence = _typo(rng, sentence)
        if size + len(sentence) + 1 > goal:
            # The last sentence cut off where the room ends, as a post typed up to the limit is.
            words = []
            for word in sentence.split():
                if size + len(" ".join([*words, word])) + 2 > goal:
                    break
                words.append(word)
            if words:
                parts.append(" ".join(words) + "…")
            break
        parts.append(sentence)
        size += len(sentence) + 1
        if platform == "reddit" and rng.random() < 0.15:
            parts.append("\n\nEDIT: " + rng.choice(sentences).format(place=place, street=street))
            size += len(parts[-1])
    return " ".join(parts)[:limit]


def _platform(rng: random.Random) -> str:
    roll = rng.random()
    return "x" if roll < 0.5 else "bluesky" if roll < 0.75 else "reddit"


def _event_post(rng: random.Random, i: int, event: str, at: float, seconds: float,
                posted: dict[tuple[str, str], list[tuple[str, str]]]) -> Entry:
    flood = event == "flood"
    author = f"{'tawe' if flood else 'bd8'}_{i}"
    places = _FLOOD_PLACES if flood else _COLLAPSE_PLACES
    streets = _FLOOD_STREETS if flood else _COLLAPSE_STREETS
    sights = _FLOOD_SIGHTS if flood else _COLLAPSE_SIGHTS
    centre = FLOOD_CENTRE if flood else COLLAPSE_CENTRE
    place, street, sight = rng.choice(places), rng.choice(streets), rng.choice(sights)
    platform = _platform(rng)
    limit = LIMITS[platform]
    roll = rng.random()
    is_dm, reply_to, kind = False, "", "report"
    local_language = rng.random() < (0.16 if flood else 0.2)
    if roll < 0.34:
        if local_language:
            text = (rng.choice(_FLOOD_WELSH) if flood else
                    rng.choice(_COLLAPSE_URDU if rng.random() < 0.7 else _COLLAPSE_POLISH)).format(place=place)
        else:
            text = rng.choice(_FLOOD_REPORTS if flood else _COLLAPSE_REPORTS).format(place=place, sight=sight)
        text = _dress(rng, text, event, limit)
    elif roll < 0.39:
        kind = "help"
        num = rng.randint(1, 160)
        pool = _FLOOD_WELSH_HELP if flood and local_language else _FLOOD_HELP if flood else _COLLAPSE_HELP
        text = _dress(rng, rng.choice(pool).format(place=place, street=street, num=num), event, limit)
        is_dm = rng.random() < 0.4  # asking for help privately
    elif roll < 0.56:
        kind = "comment"
        text = _dress(rng, rng.choice(_COMMENT[event]).format(place=place), event, limit)
    elif roll < 0.66:
        kind = "support"
        text = _dress(rng, rng.choice(_SUPPORT[event]).format(place=place), event, limit)
    elif roll < 0.68:
        kind = "chain"
        text = _CHAIN[event]
    elif roll < 0.78 and posted.get((event, platform)):
        kind = "reshare"
        original_author, original = rng.choice(posted[(event, platform)][-300:])
        handle = original_author if platform != "bluesky" else f"{original_author}.bsky.social"
        prefix = {"x": f"RT @{handle}: ", "bluesky": f"🔁 @{handle}: ", "reddit": f"u/{handle} posted this: "}[platform]
        text = (prefix + original)[:limit]
    elif roll < 0.92 and posted.get((event, platform)):
        kind = "reply"
        reply_to, _ = rng.choice(posted[(event, platform)][-300:])
        text = rng.choice(_REPLIES[event]).format(place=place, street=street, sight=sight)
        if platform == "x":
            text = f"@{reply_to} {text}"
        text = _dress(rng, text, event, limit)
    elif roll < 0.935:
        kind = "long"
        text = _long(rng, event, platform, place, street)
    else:
        if local_language:
            text = (rng.choice(_FLOOD_WELSH) if flood else rng.choice(_COLLAPSE_URDU)).format(place=place)
        else:
            text = rng.choice(_FLOOD_REPORTS if flood else _COLLAPSE_REPORTS).format(place=place, sight=sight)
        text = _dress(rng, text, event, limit)
    geotag = platform == "x" and not is_dm and kind in ("report", "help", "reply") and rng.random() < 0.45
    lat, lon = _around(rng, centre, 1.2 if flood else 0.4) if geotag else (None, None)
    if not is_dm and kind in ("report", "help", "long"):
        posted.setdefault((event, platform), []).append((author, text))
    return Entry(at, text, author, kind, lat, lon, platform, event, is_dm, reply_to)


def _lone(rng: random.Random, i: int, text: str, prefix: str, kind: str, at: float) -> Entry:
    """A lone cry on one of the platforms, a third of them private messages; an X post in a town
    that is named carries a geotag one time in two."""
    platform = ("x", "bluesky", "reddit")[i % 3]
    is_dm = i % 3 == 1 or (i % 5 == 0 and platform != "x")
    town = next((t for t in _LONE_TOWNS if t in text), None)
    lat, lon = (None, None)
    if platform == "x" and not is_dm and town and rng.random() < 0.5:
        lat, lon = _around(rng, _LONE_TOWNS[town], 1.5)
    return Entry(at, text, f"{prefix}{i}", kind, lat, lon, platform, "", is_dm)


def burst_scenario(n_burst: int = 16_000, n_unrelated: int = 20, seconds: float = 60.0,
                   seed: int = 999, n_quiet: int = len(_QUIET)) -> list[Entry]:
    """Entries sorted by offset. The flood's reports trickle in, then keep coming; the collapse
    starts at COLLAPSE_STARTS of the replay with a sharp rise. A few posts in each event's threads
    report the other, a few speak of both; lone cries arrive once both are under way."""
    rng = random.Random(seed)
    n_collapse = int(n_burst * 0.45)
    n_both = max(1, n_burst // 400)
    n_cross = max(2, n_burst // 1000)
    n_flood = n_burst - n_collapse - n_both - n_cross
    start = COLLAPSE_STARTS * seconds
    slots = [("flood", seconds * (math.sqrt(rng.random() * 0.01) if n < n_flood // 40 else rng.random()))
             for n in range(n_flood)]
    slots += [("collapse", start + (seconds - start) * (rng.random() ** 1.3)) for _ in range(n_collapse)]
    slots.sort(key=lambda s: s[1])
    posted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    out: list[Entry] = []
    for i, (event, at) in enumerate(slots):  # in time order: a reply always follows its parent
        out.append(_event_post(rng, i, event, at, seconds, posted))
    # Both events on one's thread: replies that report the other event (and where it is).
    for n in range(n_cross):
        thread_event, reported = ("flood", "collapse") if n % 2 == 0 else ("collapse", "flood")
        at = start + 0.1 * seconds + (seconds - start - 0.15 * seconds) * rng.random()
        platform = ("x", "bluesky", "reddit")[n % 3]
        earlier = [e for e in out if e.event == thread_event and e.platform == platform and e.at < at
                   and not e.is_dm and e.kind in ("report", "help", "long")]
        text = rng.choice(_CROSS[reported])
        if not earlier:
            continue
        parent = rng.choice(earlier[-300:])
        if platform == "x":
            text = f"@{parent.author} {text}"
        out.append(Entry(at, text, f"cross_{n}", "cross", None, None, platform, reported, False, parent.author))
    for n in range(n_both):
        at = start + (seconds - start) * rng.random()
        out.append(Entry(at, _dress(rng, rng.choice(_BOTH), "flood", 280), f"both_{n}", "both",
                         platform=_platform(rng)))
    for n in range(n_unrelated):
        at = seconds * (0.25 + 0.73 * rng.random())
        out.append(_lone(rng, n, _LONE[n % len(_LONE)], UNRELATED_AUTHOR, "unrelated", at))
    for n in range(n_quiet):
        at = seconds * (0.25 + 0.73 * rng.random())
        out.append(_lone(rng, n, _QUIET[n % len(_QUIET)], QUIET_AUTHOR, "quiet", at))
    return sorted(out, key=lambda e: e.at)
