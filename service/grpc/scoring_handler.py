"""ScoreRoute behind its caches: what every RPC that scores a route (ScoreRoute, BatchScoreRoutes,
CompareRoutes, SuggestDepartures) calls.

One call: the request's canonical form (:func:`~service.grpc.convert.score_identity`) is computed
once; it keys the alias of a request seen before (answered without decoding its route again) and
the result cache. On a miss the route is decoded once, its crossings detected once (and handed
to the use case), its cell chain taken from the geometry cache (layer-independent) or computed,
and the response built once: it is stored serialized and returned as built, not parsed back.
Departures are scored at the start of their bucket; times in the answer are the request's own.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from geodata.border import BorderData, detect_crossings
from geodata.cells import CellChain, chain_from_bytes, chain_to_bytes, route_to_cells
from geodata.errors import InputError
from geodata.route import RoutePath
from routerisk.v1 import route_risk_service_pb2 as pb
from service.config import Settings
from service.grpc import convert
from service.store.cache import Cache, InProcessCache, ResultCache, TieredCache
from service.store.serving import Snapshot
from service.usecases.scoring import ModelOptions, ScoreQuery, score_route

log = logging.getLogger(__name__)

# v2: answers carry the recent-activity fields and are sealed in Redis (store.redis_client); old
# replicas during a rolling upgrade keep reading and writing their v1 keys, never a sealed entry.
# v3: answers carry coverage (covered_fraction, uncovered stretches, RISK_LEVEL_NOT_COVERED) and
# port hours (closed waits until opening): a v2 answer read as v3 would claim full coverage
CACHE_KEY_VERSION = b"score-v3"
ALIAS_KEY_VERSION = b"alias-v2"
# ``cached: true`` on the wire, appended to a stored answer
CACHED_TRUE = pb.ScoreRouteResponse(cached=True).SerializeToString()
# requests at most this large may be answered from memory on the event loop (a 1,000 km route as a
# polyline is about 8 KB): a larger route's canonical form would hold the loop too long
MEMORISED_MAX_BYTES = 16 * 1024


class ScoreHandler:
    """Scores ScoreRouteRequests for the servicer: cache look-ups, single flight, bucketing."""

    def __init__(self, settings: Settings, cache: Cache, options: ModelOptions) -> None:
        self._settings = settings
        self._cache = cache
        self._options = options
        self._results = ResultCache(cache, settings.cache_ttl_seconds)
        # request identity → cache key of requests answered before: a repeated request skips route
        # decoding, validation and crossing detection (most of a cached answer's cost); in-process only
        self._aliases = InProcessCache(settings.cache_max_entries) if settings.cache_max_entries > 0 else None
        # the answers held in this process's memory (no Redis round trip): :meth:`memorised` reads them
        local = cache if isinstance(cache, InProcessCache) else cache.local if isinstance(cache, TieredCache) else None
        self._local = ResultCache(local, settings.cache_ttl_seconds) if local is not None else None

    def score(self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int) -> pb.ScoreRouteResponse:
        """Validate, then serve from the result cache or compute once; times are the request's."""
        identity, alias, data = self._lookup(request, snapshot, now_s)
        if data is not None and identity is not None:
            shift_s = identity.departure_s - identity.scored_departure_s
            return self._finished(pb.ScoreRouteResponse.FromString(data), True, request, shift_s, snapshot, now_s)
        return self._compute(request, snapshot, now_s, identity, alias)

    def score_wire(
        self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int
    ) -> bytes | pb.ScoreRouteResponse:
        """:meth:`score`, with an answer served from the cache whose times need no shift (a
        departure at the start of its bucket) returned serialized, never parsed: the stored bytes
        followed by the fields :func:`_finish` sets (``cached``, ``reference``). A parser keeps the
        last value of a repeated scalar field, and the stored answer has neither set (it is
        serialized before :func:`_finish` runs), so the bytes parse to what :meth:`score` returns."""
        identity, alias, data = self._lookup(request, snapshot, now_s)
        if data is not None and identity is not None:
            shift_s = identity.departure_s - identity.scored_departure_s
            if shift_s == 0:
                return _stored(data, request)
            return self._finished(pb.ScoreRouteResponse.FromString(data), True, request, shift_s, snapshot, now_s)
        return self._compute(request, snapshot, now_s, identity, alias)

    def memorised(self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int) -> bytes | None:
        """What :meth:`score_wire` answers for a small request seen before, when that answer is in
        this process's memory and needs no time shift; None otherwise (:meth:`score_wire` then).
        No I/O and little work (the canonical form of a route of at most
        :data:`MEMORISED_MAX_BYTES`, two dictionary look-ups): the asyncio server answers such a
        call on its event loop, without the round trip to a thread (about 0.3 ms here)."""
        local, aliases = self._local, self._aliases
        if local is None or aliases is None or request.ByteSize() > MEMORISED_MAX_BYTES:
            return None
        try:
            identity = convert.score_identity(
                request,
                now_s=now_s,
                default_speed_kmh=self._settings.default_speed_kmh,
                bucket_s=self._settings.departure_bucket_seconds,
            )
        except InputError:
            return None  # the full path names the bad fields
        if identity.departure_s != identity.scored_departure_s:
            return None
        known = aliases.get(self._alias(identity.canonical, snapshot))
        data = local.get(known.decode()) if known is not None else None
        return _stored(data, request) if data is not None else None

    def _lookup(
        self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int
    ) -> tuple[convert.ScoreIdentity | None, str | None, bytes | None]:
        """The request's identity, its alias, and the stored answer of a request seen before."""
        settings = self._settings
        try:
            identity: convert.ScoreIdentity | None = convert.score_identity(
                request,
                now_s=now_s,
                default_speed_kmh=settings.default_speed_kmh,
                bucket_s=settings.departure_bucket_seconds,
            )
        except InputError:
            identity = None  # parse_score_request below reports every bad field
        aliases = self._aliases  # None when caching is off (an empty cache is falsy: test for None)
        alias = self._alias(identity.canonical, snapshot) if identity is not None and aliases is not None else None
        if alias is not None and aliases is not None:
            # validation depends on the request alone, except the departure's distance from now,
            # which score_identity checked again; anything unusual falls back to the full path
            known = aliases.get(alias)
            data = self._results.get(known.decode()) if known is not None else None
            return identity, alias, data
        return identity, alias, None

    def _compute(
        self,
        request: pb.ScoreRouteRequest,
        snapshot: Snapshot,
        now_s: int,
        identity: convert.ScoreIdentity | None,
        alias: str | None,
    ) -> pb.ScoreRouteResponse:
        """The full path: validate, then the result cache or the scoring itself."""
        settings = self._settings
        aliases = self._aliases
        query = self._parse(request, snapshot, now_s, identity)
        if identity is None:  # not reached: parse_score_request raised on the same bad fields
            identity = convert.score_identity(
                request,
                now_s=now_s,
                default_speed_kmh=settings.default_speed_kmh,
                bucket_s=settings.departure_bucket_seconds,
            )
        scored = replace(query, departure_s=identity.scored_departure_s)
        crossings = detect_crossings(query.path, snapshot.border, self._options.crossing_match_km)
        key = self._cache_key(identity.canonical, snapshot, bool(crossings))
        built: list[pb.ScoreRouteResponse] = []

        def compute() -> bytes:
            chain = self._chain(identity.route, query.path, snapshot.layer.resolution)
            result = score_route(
                scored, snapshot.layer, snapshot.border, self._options, chain=chain, crossings=crossings
            )
            response = convert.score_response(result)
            built.append(response)
            return response.SerializeToString()

        data, cached = self._results.get_or_compute(key, compute)
        if alias is not None and aliases is not None:
            aliases.set(alias, key.encode(), self._results.ttl())
        # computed here: the response as built (compute runs only on a miss, so not cached)
        response = built[0] if built else pb.ScoreRouteResponse.FromString(data)
        shift_s = identity.departure_s - identity.scored_departure_s
        return self._finished(response, cached, request, shift_s, snapshot, now_s)

    def _finished(
        self,
        response: pb.ScoreRouteResponse,
        cached: bool,
        request: pb.ScoreRouteRequest,
        shift_s: int,
        snapshot: Snapshot,
        now_s: int,
    ) -> pb.ScoreRouteResponse:
        """The bucket's answer moved to the request's departure, unless the truck waits at closed
        lanes at the bucket's arrival or at its own: the opening does not move with the departure,
        so shifting would misplace the wait; that trip is scored at its exact departure instead,
        and cached under that departure."""
        if not shift_s or not _held_at_a_port(response, shift_s, snapshot.border):
            return _finish(response, cached, request, shift_s)
        exact = convert.score_identity(
            request, now_s=now_s, default_speed_kmh=self._settings.default_speed_kmh, bucket_s=0
        )
        key = self._cache_key(exact.canonical, snapshot, True)

        def compute() -> bytes:
            query = self._parse(request, snapshot, now_s)
            chain = self._chain(exact.route, query.path, snapshot.layer.resolution)
            crossings = detect_crossings(query.path, snapshot.border, self._options.crossing_match_km)
            result = score_route(
                query, snapshot.layer, snapshot.border, self._options, chain=chain, crossings=crossings
            )
            return convert.score_response(result).SerializeToString()

        data, hit = self._results.get_or_compute(key, compute)
        return _finish(pb.ScoreRouteResponse.FromString(data), hit, request, 0)

    def _parse(
        self,
        request: pb.ScoreRouteRequest,
        snapshot: Snapshot,
        now_s: int,
        identity: convert.ScoreIdentity | None = None,
    ) -> ScoreQuery:
        """The validated request (the layer's coverage catches a polyline of the wrong precision)."""
        return convert.parse_score_request(
            request,
            now_s=now_s,
            default_speed_kmh=self._settings.default_speed_kmh,
            max_points=self._settings.max_route_points,
            identity=identity,
            coverage=snapshot.layer.coverage,
        )

    def _alias(self, canonical: bytes, snapshot: Snapshot) -> str:
        """The canonical request under the layer and border versions it is answered with."""
        digest = hashlib.sha256(ALIAS_KEY_VERSION)
        digest.update(f"|{snapshot.layer.version}|{snapshot.border.version}|".encode())
        digest.update(canonical)
        return digest.hexdigest()

    def _chain(self, route: bytes, path: RoutePath, resolution: int) -> CellChain:
        """The route's cell chain from the geometry cache (keyed by the route alone, so shared by
        every departure, option and layer version), else computed."""
        # v2: sealed entries (store.redis_client); the version before keeps its own geom: keys
        key = "geom-v2:" + hashlib.sha256(route + bytes([resolution])).hexdigest()
        data = self._cache.get(key)
        if data is not None:
            try:
                return chain_from_bytes(data)
            except ValueError:
                log.warning("undecodable cached cell chain; recomputing")
        chain = route_to_cells(path, resolution)
        self._cache.set(key, chain_to_bytes(chain), self._results.ttl())
        return chain

    def _cache_key(self, canonical: bytes, snapshot: Snapshot, crosses: bool) -> str:
        """Request identity + layer version (+ border version when the route crosses)."""
        digest = hashlib.sha256(CACHE_KEY_VERSION)
        border = snapshot.border.version if crosses else "-"
        digest.update(f"|{snapshot.layer.version}|{border}|{self._options}|".encode())
        digest.update(canonical)
        return "score:" + digest.hexdigest()


def _stored(data: bytes, request: pb.ScoreRouteRequest) -> bytes:
    """A stored answer as sent: its bytes followed by ``cached`` and the request's reference (a
    parser keeps the last value of a scalar field; the stored answer has neither set)."""
    if request.reference:
        return data + pb.ScoreRouteResponse(cached=True, reference=request.reference).SerializeToString()
    return data + CACHED_TRUE


def _finish(
    response: pb.ScoreRouteResponse, cached: bool, request: pb.ScoreRouteRequest, shift_s: int
) -> pb.ScoreRouteResponse:
    """An answer for this request: its times moved to the request's own departure, its reference."""
    response.cached = cached
    convert.shift_times(response, shift_s)
    response.reference = request.reference
    return response


def _held_at_a_port(response: pb.ScoreRouteResponse, shift_s: int, border: BorderData) -> bool:
    """Whether the truck meets closed commercial lanes at a northbound crossing: at the bucket's
    arrival (the answer says so), or at its own arrival, ``shift_s`` later (a port that closes
    in between: the bucket's answer would show an open port and a normal wait)."""
    for crossing in response.crossings:
        if crossing.closed:
            return True
        port = border.port(crossing.port_number)
        if port is None or crossing.direction != pb.CROSSING_DIRECTION_NORTHBOUND:
            continue
        arrival_s = crossing.arrival_time.seconds + shift_s
        if port.hours.opens_at(port.time_zone, arrival_s) > arrival_s:
            return True
    return False
