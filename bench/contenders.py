"""What a GIS engineer would use instead: PostGIS and GeoPandas, answering the same question.

The question: how many incidents lie within ``corridor_km`` of the route, each weighted as a
routerisk layer weighs it (violent ×1.5, halved every 365 days before the latest incident).
PostGIS answers with ``ST_DWithin`` on a GiST-indexed point column in a metric CRS (EPSG:6372,
Mexico LCC), once against the whole route (``plain``) and once against the route cut into short
pieces (``subdivided``, the usual tuning); GeoPandas buffers the route in the same CRS and
queries the points' STRtree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geodata.incidents import IncidentSet
from geodata.layers import BuildParams
from geodata.route import RoutePath

METRIC_CRS = "EPSG:6372"
POSTGIS_PACKAGE = "postgresql-{major}-postgis-3"
DSN = os.environ.get("ROUTERISK_BENCH_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
DATABASE = "routerisk_bench"

# the recency-weighted count over the incidents a corridor query found
_WEIGHTED = """SELECT count(*), coalesce(sum(CASE WHEN violent THEN %(violent_weight)s ELSE 1.0 END
    * power(0.5, (%(as_of)s - occurred_s) / 86400.0 / %(half_life_days)s)), 0) FROM hits"""
# what a GIS engineer writes first: one ST_DWithin of every point against the whole route
PLAIN_QUERY = (
    """WITH hits AS (SELECT i.violent, i.occurred_s FROM {table} i
    WHERE ST_DWithin(i.geom, ST_Transform(ST_GeomFromText(%(wkt)s, 4326), {srid}), %(meters)s))
"""
    + _WEIGHTED
)
# the tuned form: the route cut into pieces of at most 32 vertices, so the index prunes each piece's box
SUBDIVIDED_QUERY = (
    """WITH pieces AS (
    SELECT ST_Subdivide(ST_Transform(ST_GeomFromText(%(wkt)s, 4326), {srid}), 32) AS g),
hits AS (SELECT DISTINCT i.id, i.violent, i.occurred_s
    FROM pieces p JOIN {table} i ON ST_DWithin(i.geom, p.g, %(meters)s))
"""
    + _WEIGHTED
)
QUERIES = {"plain": PLAIN_QUERY, "subdivided": SUBDIVIDED_QUERY}
METRIC_SRID = int(METRIC_CRS.split(":")[1])


@dataclass(frozen=True)
class Answer:
    """Incidents in the corridor and their recency-weighted sum."""

    count: int
    weighted: float


def route_wkt(path: RoutePath) -> str:
    return shapely.to_wkt(shapely.linestrings(np.column_stack((path.lng, path.lat))), rounding_precision=6)


class GeoPandasContender:
    """Incident points projected once, with their spatial index built once (setup, timed apart)."""

    def __init__(self, incidents: IncidentSet, params: BuildParams, corridor_km: float) -> None:
        points = gpd.GeoSeries(gpd.points_from_xy(incidents.lng, incidents.lat), crs="EPSG:4326")
        self.points = points.to_crs(METRIC_CRS)
        self.points.sindex  # noqa: B018 - build the STRtree now, not in the first query
        self.violent = incidents.violent
        self.age_days = (incidents.utc_s.max() - incidents.utc_s) / 86400.0
        self.params = params
        self.meters = corridor_km * 1000.0

    def answer(self, path: RoutePath) -> Answer:
        line = gpd.GeoSeries([shapely.linestrings(np.column_stack((path.lng, path.lat)))], crs="EPSG:4326")
        corridor = line.to_crs(METRIC_CRS).buffer(self.meters).iloc[0]
        hits = self.points.sindex.query(corridor, predicate="intersects")
        weight = np.where(self.violent[hits], self.params.violent_weight, 1.0)
        weight = weight * np.power(0.5, self.age_days[hits] / self.params.half_life_days)
        return Answer(len(hits), float(weight.sum()))


def ensure_postgis() -> str:
    """A DSN of a database with PostGIS: installs PostgreSQL's PostGIS package from Debian and
    starts the cluster when they are missing. Returns the DSN of the bench database."""
    import psycopg

    try:
        connection = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        _start_cluster()
        connection = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    with connection:
        major = connection.info.server_version // 10000
        available = connection.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
        if not available:
            _apt_install(POSTGIS_PACKAGE.format(major=major))
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            connection.execute(f"CREATE DATABASE {DATABASE}")
    dsn = f"{DSN.replace('dbname=postgres', '')} dbname={DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return dsn


def _start_cluster() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").exists() else []
    if not versions:
        _apt_install("postgresql")
        versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    time.sleep(2)


def _apt_install(package: str) -> None:
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"PostGIS is missing and there is no apt-get to install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env, stdout=subprocess.DEVNULL)


class PostGISContender:
    """One table per incident file: loaded by COPY, a GiST index on the projected points, ANALYZEd."""

    def __init__(self, dsn: str, csv_path: Path, incidents: IncidentSet, params: BuildParams, corridor_km: float):
        import psycopg

        self.connection = psycopg.connect(dsn, autocommit=True)
        # JIT compiles each plan anew (about 150 ms here) for no gain on these queries: off, as tuned servers have it
        self.connection.execute("SET jit = off")
        self.table = f"incidents_{len(incidents)}"
        self.params = params
        self.meters = corridor_km * 1000.0
        self.as_of = int(incidents.utc_s.max())
        self._load(csv_path)

    def _load(self, csv_path: Path) -> None:
        run = self.connection.execute
        run(f"DROP TABLE IF EXISTS {self.table}, {self.table}_raw")
        run(
            f"CREATE UNLOGGED TABLE {self.table}_raw (id bigint, occurred_at timestamptz, latitude float8, "
            "longitude float8, type text, violent boolean, source text)"
        )
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY {self.table}_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            open(csv_path, "rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        run(
            f"CREATE TABLE {self.table} AS SELECT id, violent, extract(epoch FROM occurred_at)::float8 AS occurred_s, "
            f"ST_Transform(ST_SetSRID(ST_MakePoint(longitude, latitude), 4326), {METRIC_SRID}) AS geom "
            f"FROM {self.table}_raw"
        )
        run(f"DROP TABLE {self.table}_raw")
        run(f"CREATE INDEX ON {self.table} USING gist (geom)")
        run(f"ANALYZE {self.table}")

    def answer(self, path: RoutePath, query: str = "subdivided") -> Answer:
        """Never a prepared statement: PostgreSQL's generic plan for ``plain`` drops the index and
        scans every row (27 s instead of 0.1 s for 1,000 km on 100k incidents, measured here);
        psycopg would prepare it by itself from the fifth call on."""
        values = {
            "wkt": route_wkt(path),
            "meters": self.meters,
            "as_of": self.as_of,
            "violent_weight": self.params.violent_weight,
            "half_life_days": self.params.half_life_days,
        }
        count, weighted = self.connection.execute(
            QUERIES[query].format(table=self.table, srid=METRIC_SRID), values, prepare=False
        ).fetchone()
        return Answer(int(count), float(weighted))

    def close(self) -> None:
        self.connection.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.connection.close()
