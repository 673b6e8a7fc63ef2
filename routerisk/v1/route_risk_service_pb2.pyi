import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CrossingLane(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CROSSING_LANE_UNSPECIFIED: _ClassVar[CrossingLane]
    CROSSING_LANE_STANDARD: _ClassVar[CrossingLane]
    CROSSING_LANE_FAST: _ClassVar[CrossingLane]

class RiskLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_LEVEL_UNSPECIFIED: _ClassVar[RiskLevel]
    RISK_LEVEL_LOW: _ClassVar[RiskLevel]
    RISK_LEVEL_MODERATE: _ClassVar[RiskLevel]
    RISK_LEVEL_HIGH: _ClassVar[RiskLevel]
    RISK_LEVEL_SEVERE: _ClassVar[RiskLevel]
    RISK_LEVEL_CRITICAL: _ClassVar[RiskLevel]
    RISK_LEVEL_NOT_COVERED: _ClassVar[RiskLevel]

class WaitSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WAIT_SOURCE_UNSPECIFIED: _ClassVar[WaitSource]
    WAIT_SOURCE_LIVE: _ClassVar[WaitSource]
    WAIT_SOURCE_HISTORICAL: _ClassVar[WaitSource]
    WAIT_SOURCE_DEFAULT: _ClassVar[WaitSource]

class CrossingDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CROSSING_DIRECTION_UNSPECIFIED: _ClassVar[CrossingDirection]
    CROSSING_DIRECTION_NORTHBOUND: _ClassVar[CrossingDirection]
    CROSSING_DIRECTION_SOUTHBOUND: _ClassVar[CrossingDirection]

class TripAlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIP_ALERT_KIND_UNSPECIFIED: _ClassVar[TripAlertKind]
    TRIP_ALERT_KIND_ENTERED_HIGH_RISK_CELL: _ClassVar[TripAlertKind]
    TRIP_ALERT_KIND_STOPPED_IN_HIGH_RISK_CELL: _ClassVar[TripAlertKind]
    TRIP_ALERT_KIND_LEFT_PLANNED_ROUTE: _ClassVar[TripAlertKind]
    TRIP_ALERT_KIND_RETURNED_TO_ROUTE: _ClassVar[TripAlertKind]
    TRIP_ALERT_KIND_APPROACHING_CROSSING: _ClassVar[TripAlertKind]
CROSSING_LANE_UNSPECIFIED: CrossingLane
CROSSING_LANE_STANDARD: CrossingLane
CROSSING_LANE_FAST: CrossingLane
RISK_LEVEL_UNSPECIFIED: RiskLevel
RISK_LEVEL_LOW: RiskLevel
RISK_LEVEL_MODERATE: RiskLevel
RISK_LEVEL_HIGH: RiskLevel
RISK_LEVEL_SEVERE: RiskLevel
RISK_LEVEL_CRITICAL: RiskLevel
RISK_LEVEL_NOT_COVERED: RiskLevel
WAIT_SOURCE_UNSPECIFIED: WaitSource
WAIT_SOURCE_LIVE: WaitSource
WAIT_SOURCE_HISTORICAL: WaitSource
WAIT_SOURCE_DEFAULT: WaitSource
CROSSING_DIRECTION_UNSPECIFIED: CrossingDirection
CROSSING_DIRECTION_NORTHBOUND: CrossingDirection
CROSSING_DIRECTION_SOUTHBOUND: CrossingDirection
TRIP_ALERT_KIND_UNSPECIFIED: TripAlertKind
TRIP_ALERT_KIND_ENTERED_HIGH_RISK_CELL: TripAlertKind
TRIP_ALERT_KIND_STOPPED_IN_HIGH_RISK_CELL: TripAlertKind
TRIP_ALERT_KIND_LEFT_PLANNED_ROUTE: TripAlertKind
TRIP_ALERT_KIND_RETURNED_TO_ROUTE: TripAlertKind
TRIP_ALERT_KIND_APPROACHING_CROSSING: TripAlertKind

class LatLng(_message.Message):
    __slots__ = ("latitude", "longitude")
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    latitude: float
    longitude: float
    def __init__(self, latitude: _Optional[float] = ..., longitude: _Optional[float] = ...) -> None: ...

class LineString(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[LatLng]
    def __init__(self, points: _Optional[_Iterable[_Union[LatLng, _Mapping]]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("line", "encoded_polyline", "encoded_polyline6", "geojson")
    LINE_FIELD_NUMBER: _ClassVar[int]
    ENCODED_POLYLINE_FIELD_NUMBER: _ClassVar[int]
    ENCODED_POLYLINE6_FIELD_NUMBER: _ClassVar[int]
    GEOJSON_FIELD_NUMBER: _ClassVar[int]
    line: LineString
    encoded_polyline: str
    encoded_polyline6: str
    geojson: str
    def __init__(self, line: _Optional[_Union[LineString, _Mapping]] = ..., encoded_polyline: _Optional[str] = ..., encoded_polyline6: _Optional[str] = ..., geojson: _Optional[str] = ...) -> None: ...

class PlannedStop(_message.Message):
    __slots__ = ("location", "dwell")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    DWELL_FIELD_NUMBER: _ClassVar[int]
    location: LatLng
    dwell: _duration_pb2.Duration
    def __init__(self, location: _Optional[_Union[LatLng, _Mapping]] = ..., dwell: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ScoreRouteRequest(_message.Message):
    __slots__ = ("route", "departure_time", "average_speed_kmh", "crossing_lane", "stops", "reference")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    CROSSING_LANE_FIELD_NUMBER: _ClassVar[int]
    STOPS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    route: Route
    departure_time: _timestamp_pb2.Timestamp
    average_speed_kmh: float
    crossing_lane: CrossingLane
    stops: _containers.RepeatedCompositeFieldContainer[PlannedStop]
    reference: str
    def __init__(self, route: _Optional[_Union[Route, _Mapping]] = ..., departure_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., average_speed_kmh: _Optional[float] = ..., crossing_lane: _Optional[_Union[CrossingLane, str]] = ..., stops: _Optional[_Iterable[_Union[PlannedStop, _Mapping]]] = ..., reference: _Optional[str] = ...) -> None: ...

class RouteSegment(_message.Message):
    __slots__ = ("start_km", "end_km", "start", "end", "enter_time", "exit_time", "expected_incidents", "share", "incident_count", "level", "exposure")
    START_KM_FIELD_NUMBER: _ClassVar[int]
    END_KM_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    ENTER_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    start_km: float
    end_km: float
    start: LatLng
    end: LatLng
    enter_time: _timestamp_pb2.Timestamp
    exit_time: _timestamp_pb2.Timestamp
    expected_incidents: float
    share: float
    incident_count: int
    level: RiskLevel
    exposure: _duration_pb2.Duration
    def __init__(self, start_km: _Optional[float] = ..., end_km: _Optional[float] = ..., start: _Optional[_Union[LatLng, _Mapping]] = ..., end: _Optional[_Union[LatLng, _Mapping]] = ..., enter_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_incidents: _Optional[float] = ..., share: _Optional[float] = ..., incident_count: _Optional[int] = ..., level: _Optional[_Union[RiskLevel, str]] = ..., exposure: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Hotspot(_message.Message):
    __slots__ = ("cell", "center", "risk", "incident_count", "last_incident_time", "expected_incidents", "pass_time", "recent_activity", "recent_share", "recent_since")
    CELL_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_INCIDENT_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    PASS_TIME_FIELD_NUMBER: _ClassVar[int]
    RECENT_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    RECENT_SHARE_FIELD_NUMBER: _ClassVar[int]
    RECENT_SINCE_FIELD_NUMBER: _ClassVar[int]
    cell: str
    center: LatLng
    risk: float
    incident_count: int
    last_incident_time: _timestamp_pb2.Timestamp
    expected_incidents: float
    pass_time: _timestamp_pb2.Timestamp
    recent_activity: bool
    recent_share: float
    recent_since: _timestamp_pb2.Timestamp
    def __init__(self, cell: _Optional[str] = ..., center: _Optional[_Union[LatLng, _Mapping]] = ..., risk: _Optional[float] = ..., incident_count: _Optional[int] = ..., last_incident_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_incidents: _Optional[float] = ..., pass_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recent_activity: _Optional[bool] = ..., recent_share: _Optional[float] = ..., recent_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CrossingPassage(_message.Message):
    __slots__ = ("port_number", "port_name", "crossing_name", "lane", "expected_wait_minutes", "wait_source", "observed_at", "direction", "location", "arrival_time", "closed", "expected_incidents", "operational_status", "lanes_open_time", "hours_source")
    PORT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PORT_NAME_FIELD_NUMBER: _ClassVar[int]
    CROSSING_NAME_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WAIT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    WAIT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    OPERATIONAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    LANES_OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    HOURS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    port_number: str
    port_name: str
    crossing_name: str
    lane: CrossingLane
    expected_wait_minutes: float
    wait_source: WaitSource
    observed_at: _timestamp_pb2.Timestamp
    direction: CrossingDirection
    location: LatLng
    arrival_time: _timestamp_pb2.Timestamp
    closed: bool
    expected_incidents: float
    operational_status: str
    lanes_open_time: _timestamp_pb2.Timestamp
    hours_source: str
    def __init__(self, port_number: _Optional[str] = ..., port_name: _Optional[str] = ..., crossing_name: _Optional[str] = ..., lane: _Optional[_Union[CrossingLane, str]] = ..., expected_wait_minutes: _Optional[float] = ..., wait_source: _Optional[_Union[WaitSource, str]] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., direction: _Optional[_Union[CrossingDirection, str]] = ..., location: _Optional[_Union[LatLng, _Mapping]] = ..., arrival_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed: _Optional[bool] = ..., expected_incidents: _Optional[float] = ..., operational_status: _Optional[str] = ..., lanes_open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hours_source: _Optional[str] = ...) -> None: ...

class UncoveredStretch(_message.Message):
    __slots__ = ("start_km", "end_km", "start", "end")
    START_KM_FIELD_NUMBER: _ClassVar[int]
    END_KM_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start_km: float
    end_km: float
    start: LatLng
    end: LatLng
    def __init__(self, start_km: _Optional[float] = ..., end_km: _Optional[float] = ..., start: _Optional[_Union[LatLng, _Mapping]] = ..., end: _Optional[_Union[LatLng, _Mapping]] = ...) -> None: ...

class ScoreRouteResponse(_message.Message):
    __slots__ = ("score", "level", "expected_incidents", "incident_probability", "distance_km", "duration", "segments", "hotspots", "crossings", "layer_version", "cached", "exposed_duration", "departure_time", "arrival_time", "resolution", "cell_count", "reference", "layer_synthetic", "queue_expected_incidents", "border_data_version", "covered_fraction", "uncovered_stretches")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    HOTSPOTS_FIELD_NUMBER: _ClassVar[int]
    CROSSINGS_FIELD_NUMBER: _ClassVar[int]
    LAYER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_DURATION_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    CELL_COUNT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    LAYER_SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    QUEUE_EXPECTED_INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    BORDER_DATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    COVERED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    UNCOVERED_STRETCHES_FIELD_NUMBER: _ClassVar[int]
    score: float
    level: RiskLevel
    expected_incidents: float
    incident_probability: float
    distance_km: float
    duration: _duration_pb2.Duration
    segments: _containers.RepeatedCompositeFieldContainer[RouteSegment]
    hotspots: _containers.RepeatedCompositeFieldContainer[Hotspot]
    crossings: _containers.RepeatedCompositeFieldContainer[CrossingPassage]
    layer_version: str
    cached: bool
    exposed_duration: _duration_pb2.Duration
    departure_time: _timestamp_pb2.Timestamp
    arrival_time: _timestamp_pb2.Timestamp
    resolution: int
    cell_count: int
    reference: str
    layer_synthetic: bool
    queue_expected_incidents: float
    border_data_version: str
    covered_fraction: float
    uncovered_stretches: _containers.RepeatedCompositeFieldContainer[UncoveredStretch]
    def __init__(self, score: _Optional[float] = ..., level: _Optional[_Union[RiskLevel, str]] = ..., expected_incidents: _Optional[float] = ..., incident_probability: _Optional[float] = ..., distance_km: _Optional[float] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., segments: _Optional[_Iterable[_Union[RouteSegment, _Mapping]]] = ..., hotspots: _Optional[_Iterable[_Union[Hotspot, _Mapping]]] = ..., crossings: _Optional[_Iterable[_Union[CrossingPassage, _Mapping]]] = ..., layer_version: _Optional[str] = ..., cached: _Optional[bool] = ..., exposed_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., departure_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., arrival_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolution: _Optional[int] = ..., cell_count: _Optional[int] = ..., reference: _Optional[str] = ..., layer_synthetic: _Optional[bool] = ..., queue_expected_incidents: _Optional[float] = ..., border_data_version: _Optional[str] = ..., covered_fraction: _Optional[float] = ..., uncovered_stretches: _Optional[_Iterable[_Union[UncoveredStretch, _Mapping]]] = ...) -> None: ...

class BatchScoreRoutesRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ScoreRouteRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ScoreRouteRequest, _Mapping]]] = ...) -> None: ...

class ScoreRouteResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: ScoreRouteResponse
    error: _status_pb2.Status
    def __init__(self, response: _Optional[_Union[ScoreRouteResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class BatchScoreRoutesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoreRouteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ScoreRouteResult, _Mapping]]] = ...) -> None: ...

class GetCellRiskRequest(_message.Message):
    __slots__ = ("location", "cell", "time")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    location: LatLng
    cell: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, location: _Optional[_Union[LatLng, _Mapping]] = ..., cell: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCellRiskResponse(_message.Message):
    __slots__ = ("cell", "center", "resolution", "risk", "level", "incident_count", "last_incident_time", "layer_version", "time_zone", "hour_of_week", "hour_of_week_risk", "layer_synthetic", "risk_lower", "risk_upper", "violent_incident_count", "recent_activity", "recent_share", "recent_since")
    CELL_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_INCIDENT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAYER_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    HOUR_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    HOUR_OF_WEEK_RISK_FIELD_NUMBER: _ClassVar[int]
    LAYER_SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    RISK_LOWER_FIELD_NUMBER: _ClassVar[int]
    RISK_UPPER_FIELD_NUMBER: _ClassVar[int]
    VIOLENT_INCIDENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECENT_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    RECENT_SHARE_FIELD_NUMBER: _ClassVar[int]
    RECENT_SINCE_FIELD_NUMBER: _ClassVar[int]
    cell: str
    center: LatLng
    resolution: int
    risk: float
    level: RiskLevel
    incident_count: int
    last_incident_time: _timestamp_pb2.Timestamp
    layer_version: str
    time_zone: str
    hour_of_week: int
    hour_of_week_risk: _containers.RepeatedScalarFieldContainer[float]
    layer_synthetic: bool
    risk_lower: float
    risk_upper: float
    violent_incident_count: int
    recent_activity: bool
    recent_share: float
    recent_since: _timestamp_pb2.Timestamp
    def __init__(self, cell: _Optional[str] = ..., center: _Optional[_Union[LatLng, _Mapping]] = ..., resolution: _Optional[int] = ..., risk: _Optional[float] = ..., level: _Optional[_Union[RiskLevel, str]] = ..., incident_count: _Optional[int] = ..., last_incident_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., layer_version: _Optional[str] = ..., time_zone: _Optional[str] = ..., hour_of_week: _Optional[int] = ..., hour_of_week_risk: _Optional[_Iterable[float]] = ..., layer_synthetic: _Optional[bool] = ..., risk_lower: _Optional[float] = ..., risk_upper: _Optional[float] = ..., violent_incident_count: _Optional[int] = ..., recent_activity: _Optional[bool] = ..., recent_share: _Optional[float] = ..., recent_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("west", "south", "east", "north")
    WEST_FIELD_NUMBER: _ClassVar[int]
    SOUTH_FIELD_NUMBER: _ClassVar[int]
    EAST_FIELD_NUMBER: _ClassVar[int]
    NORTH_FIELD_NUMBER: _ClassVar[int]
    west: float
    south: float
    east: float
    north: float
    def __init__(self, west: _Optional[float] = ..., south: _Optional[float] = ..., east: _Optional[float] = ..., north: _Optional[float] = ...) -> None: ...

class ListHotspotsRequest(_message.Message):
    __slots__ = ("bounds", "top", "page_size", "page_token", "time")
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    bounds: BoundingBox
    top: int
    page_size: int
    page_token: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, bounds: _Optional[_Union[BoundingBox, _Mapping]] = ..., top: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CellHotspot(_message.Message):
    __slots__ = ("cell", "center", "risk", "risk_lower", "risk_upper", "level", "incident_count", "violent_incident_count", "last_incident_time", "recent_activity", "recent_share", "recent_since")
    CELL_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    RISK_LOWER_FIELD_NUMBER: _ClassVar[int]
    RISK_UPPER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    VIOLENT_INCIDENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_INCIDENT_TIME_FIELD_NUMBER: _ClassVar[int]
    RECENT_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    RECENT_SHARE_FIELD_NUMBER: _ClassVar[int]
    RECENT_SINCE_FIELD_NUMBER: _ClassVar[int]
    cell: str
    center: LatLng
    risk: float
    risk_lower: float
    risk_upper: float
    level: RiskLevel
    incident_count: int
    violent_incident_count: int
    last_incident_time: _timestamp_pb2.Timestamp
    recent_activity: bool
    recent_share: float
    recent_since: _timestamp_pb2.Timestamp
    def __init__(self, cell: _Optional[str] = ..., center: _Optional[_Union[LatLng, _Mapping]] = ..., risk: _Optional[float] = ..., risk_lower: _Optional[float] = ..., risk_upper: _Optional[float] = ..., level: _Optional[_Union[RiskLevel, str]] = ..., incident_count: _Optional[int] = ..., violent_incident_count: _Optional[int] = ..., last_incident_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recent_activity: _Optional[bool] = ..., recent_share: _Optional[float] = ..., recent_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListHotspotsResponse(_message.Message):
    __slots__ = ("hotspots", "next_page_token", "layer_version", "total_size", "layer_synthetic")
    HOTSPOTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LAYER_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    LAYER_SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    hotspots: _containers.RepeatedCompositeFieldContainer[CellHotspot]
    next_page_token: str
    layer_version: str
    total_size: int
    layer_synthetic: bool
    def __init__(self, hotspots: _Optional[_Iterable[_Union[CellHotspot, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., layer_version: _Optional[str] = ..., total_size: _Optional[int] = ..., layer_synthetic: _Optional[bool] = ...) -> None: ...

class ListBorderCrossingsRequest(_message.Message):
    __slots__ = ("port_number", "time")
    PORT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    port_number: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, port_number: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LaneWait(_message.Message):
    __slots__ = ("lane", "expected_wait_minutes", "source", "observed_at", "age", "operational_status", "lanes_open", "closed", "lanes_open_time")
    LANE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WAIT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    LANES_OPEN_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    LANES_OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    lane: CrossingLane
    expected_wait_minutes: float
    source: WaitSource
    observed_at: _timestamp_pb2.Timestamp
    age: _duration_pb2.Duration
    operational_status: str
    lanes_open: int
    closed: bool
    lanes_open_time: _timestamp_pb2.Timestamp
    def __init__(self, lane: _Optional[_Union[CrossingLane, str]] = ..., expected_wait_minutes: _Optional[float] = ..., source: _Optional[_Union[WaitSource, str]] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., operational_status: _Optional[str] = ..., lanes_open: _Optional[int] = ..., closed: _Optional[bool] = ..., lanes_open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BorderCrossing(_message.Message):
    __slots__ = ("port_number", "port_name", "crossing_name", "mexican_city", "us_state", "location", "time_zone", "commercial_lanes", "fast_lanes", "lane_waits", "commercial_hours", "hours_source")
    PORT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PORT_NAME_FIELD_NUMBER: _ClassVar[int]
    CROSSING_NAME_FIELD_NUMBER: _ClassVar[int]
    MEXICAN_CITY_FIELD_NUMBER: _ClassVar[int]
    US_STATE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    COMMERCIAL_LANES_FIELD_NUMBER: _ClassVar[int]
    FAST_LANES_FIELD_NUMBER: _ClassVar[int]
    LANE_WAITS_FIELD_NUMBER: _ClassVar[int]
    COMMERCIAL_HOURS_FIELD_NUMBER: _ClassVar[int]
    HOURS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    port_number: str
    port_name: str
    crossing_name: str
    mexican_city: str
    us_state: str
    location: LatLng
    time_zone: str
    commercial_lanes: int
    fast_lanes: int
    lane_waits: _containers.RepeatedCompositeFieldContainer[LaneWait]
    commercial_hours: str
    hours_source: str
    def __init__(self, port_number: _Optional[str] = ..., port_name: _Optional[str] = ..., crossing_name: _Optional[str] = ..., mexican_city: _Optional[str] = ..., us_state: _Optional[str] = ..., location: _Optional[_Union[LatLng, _Mapping]] = ..., time_zone: _Optional[str] = ..., commercial_lanes: _Optional[int] = ..., fast_lanes: _Optional[int] = ..., lane_waits: _Optional[_Iterable[_Union[LaneWait, _Mapping]]] = ..., commercial_hours: _Optional[str] = ..., hours_source: _Optional[str] = ...) -> None: ...

class ListBorderCrossingsResponse(_message.Message):
    __slots__ = ("crossings", "border_data_version")
    CROSSINGS_FIELD_NUMBER: _ClassVar[int]
    BORDER_DATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    crossings: _containers.RepeatedCompositeFieldContainer[BorderCrossing]
    border_data_version: str
    def __init__(self, crossings: _Optional[_Iterable[_Union[BorderCrossing, _Mapping]]] = ..., border_data_version: _Optional[str] = ...) -> None: ...

class CompareRoutesRequest(_message.Message):
    __slots__ = ("alternatives", "risk_weight")
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    RISK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    alternatives: _containers.RepeatedCompositeFieldContainer[ScoreRouteRequest]
    risk_weight: float
    def __init__(self, alternatives: _Optional[_Iterable[_Union[ScoreRouteRequest, _Mapping]]] = ..., risk_weight: _Optional[float] = ...) -> None: ...

class RankedRoute(_message.Message):
    __slots__ = ("index", "rank", "cost", "result")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    index: int
    rank: int
    cost: float
    result: ScoreRouteResponse
    def __init__(self, index: _Optional[int] = ..., rank: _Optional[int] = ..., cost: _Optional[float] = ..., result: _Optional[_Union[ScoreRouteResponse, _Mapping]] = ...) -> None: ...

class CompareRoutesResponse(_message.Message):
    __slots__ = ("ranked", "recommended_index", "reason", "risk_weight")
    RANKED_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RISK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ranked: _containers.RepeatedCompositeFieldContainer[RankedRoute]
    recommended_index: int
    reason: str
    risk_weight: float
    def __init__(self, ranked: _Optional[_Iterable[_Union[RankedRoute, _Mapping]]] = ..., recommended_index: _Optional[int] = ..., reason: _Optional[str] = ..., risk_weight: _Optional[float] = ...) -> None: ...

class SuggestDeparturesRequest(_message.Message):
    __slots__ = ("trip", "window", "step", "risk_weight")
    TRIP_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    RISK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    trip: ScoreRouteRequest
    window: _duration_pb2.Duration
    step: _duration_pb2.Duration
    risk_weight: float
    def __init__(self, trip: _Optional[_Union[ScoreRouteRequest, _Mapping]] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., step: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., risk_weight: _Optional[float] = ...) -> None: ...

class RankedDeparture(_message.Message):
    __slots__ = ("rank", "cost", "result")
    RANK_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    rank: int
    cost: float
    result: ScoreRouteResponse
    def __init__(self, rank: _Optional[int] = ..., cost: _Optional[float] = ..., result: _Optional[_Union[ScoreRouteResponse, _Mapping]] = ...) -> None: ...

class SuggestDeparturesResponse(_message.Message):
    __slots__ = ("departures", "reason", "risk_weight")
    DEPARTURES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RISK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    departures: _containers.RepeatedCompositeFieldContainer[RankedDeparture]
    reason: str
    risk_weight: float
    def __init__(self, departures: _Optional[_Iterable[_Union[RankedDeparture, _Mapping]]] = ..., reason: _Optional[str] = ..., risk_weight: _Optional[float] = ...) -> None: ...

class ExportAvoidAreasRequest(_message.Message):
    __slots__ = ("bounds", "min_level", "time", "valhalla_max_perimeter_meters", "graphhopper_max_vertices")
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    MIN_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    VALHALLA_MAX_PERIMETER_METERS_FIELD_NUMBER: _ClassVar[int]
    GRAPHHOPPER_MAX_VERTICES_FIELD_NUMBER: _ClassVar[int]
    bounds: BoundingBox
    min_level: RiskLevel
    time: _timestamp_pb2.Timestamp
    valhalla_max_perimeter_meters: float
    graphhopper_max_vertices: int
    def __init__(self, bounds: _Optional[_Union[BoundingBox, _Mapping]] = ..., min_level: _Optional[_Union[RiskLevel, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valhalla_max_perimeter_meters: _Optional[float] = ..., graphhopper_max_vertices: _Optional[int] = ...) -> None: ...

class AvoidArea(_message.Message):
    __slots__ = ("id", "level", "cell_count", "risk", "vertex_count", "hole_count", "perimeter_meters", "in_graphhopper")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CELL_COUNT_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    VERTEX_COUNT_FIELD_NUMBER: _ClassVar[int]
    HOLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PERIMETER_METERS_FIELD_NUMBER: _ClassVar[int]
    IN_GRAPHHOPPER_FIELD_NUMBER: _ClassVar[int]
    id: str
    level: RiskLevel
    cell_count: int
    risk: float
    vertex_count: int
    hole_count: int
    perimeter_meters: float
    in_graphhopper: bool
    def __init__(self, id: _Optional[str] = ..., level: _Optional[_Union[RiskLevel, str]] = ..., cell_count: _Optional[int] = ..., risk: _Optional[float] = ..., vertex_count: _Optional[int] = ..., hole_count: _Optional[int] = ..., perimeter_meters: _Optional[float] = ..., in_graphhopper: _Optional[bool] = ...) -> None: ...

class AvoidAreaBudget(_message.Message):
    __slots__ = ("included", "left_out", "used", "limit")
    INCLUDED_FIELD_NUMBER: _ClassVar[int]
    LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    included: int
    left_out: int
    used: float
    limit: float
    def __init__(self, included: _Optional[int] = ..., left_out: _Optional[int] = ..., used: _Optional[float] = ..., limit: _Optional[float] = ...) -> None: ...

class ExportAvoidAreasResponse(_message.Message):
    __slots__ = ("areas", "geojson", "valhalla", "graphhopper", "valhalla_budget", "graphhopper_budget", "cell_count", "layer_version", "layer_synthetic")
    AREAS_FIELD_NUMBER: _ClassVar[int]
    GEOJSON_FIELD_NUMBER: _ClassVar[int]
    VALHALLA_FIELD_NUMBER: _ClassVar[int]
    GRAPHHOPPER_FIELD_NUMBER: _ClassVar[int]
    VALHALLA_BUDGET_FIELD_NUMBER: _ClassVar[int]
    GRAPHHOPPER_BUDGET_FIELD_NUMBER: _ClassVar[int]
    CELL_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAYER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAYER_SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    areas: _containers.RepeatedCompositeFieldContainer[AvoidArea]
    geojson: str
    valhalla: str
    graphhopper: str
    valhalla_budget: AvoidAreaBudget
    graphhopper_budget: AvoidAreaBudget
    cell_count: int
    layer_version: str
    layer_synthetic: bool
    def __init__(self, areas: _Optional[_Iterable[_Union[AvoidArea, _Mapping]]] = ..., geojson: _Optional[str] = ..., valhalla: _Optional[str] = ..., graphhopper: _Optional[str] = ..., valhalla_budget: _Optional[_Union[AvoidAreaBudget, _Mapping]] = ..., graphhopper_budget: _Optional[_Union[AvoidAreaBudget, _Mapping]] = ..., cell_count: _Optional[int] = ..., layer_version: _Optional[str] = ..., layer_synthetic: _Optional[bool] = ...) -> None: ...

class MonitorTripRequest(_message.Message):
    __slots__ = ("trip_id", "time", "location", "speed_kmh", "planned_route", "options")
    TRIP_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    PLANNED_ROUTE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    trip_id: str
    time: _timestamp_pb2.Timestamp
    location: LatLng
    speed_kmh: float
    planned_route: Route
    options: TripMonitorOptions
    def __init__(self, trip_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location: _Optional[_Union[LatLng, _Mapping]] = ..., speed_kmh: _Optional[float] = ..., planned_route: _Optional[_Union[Route, _Mapping]] = ..., options: _Optional[_Union[TripMonitorOptions, _Mapping]] = ...) -> None: ...

class TripMonitorOptions(_message.Message):
    __slots__ = ("off_route_meters", "dwell_alert", "approach_km", "crossing_lane")
    OFF_ROUTE_METERS_FIELD_NUMBER: _ClassVar[int]
    DWELL_ALERT_FIELD_NUMBER: _ClassVar[int]
    APPROACH_KM_FIELD_NUMBER: _ClassVar[int]
    CROSSING_LANE_FIELD_NUMBER: _ClassVar[int]
    off_route_meters: float
    dwell_alert: _duration_pb2.Duration
    approach_km: float
    crossing_lane: CrossingLane
    def __init__(self, off_route_meters: _Optional[float] = ..., dwell_alert: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., approach_km: _Optional[float] = ..., crossing_lane: _Optional[_Union[CrossingLane, str]] = ...) -> None: ...

class TripAlert(_message.Message):
    __slots__ = ("kind", "severity", "reason", "time", "location", "cell", "risk", "distance_meters", "dwell", "port_number", "port_name", "crossing_name", "expected_wait_minutes", "wait_source", "crossing_closed")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_METERS_FIELD_NUMBER: _ClassVar[int]
    DWELL_FIELD_NUMBER: _ClassVar[int]
    PORT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PORT_NAME_FIELD_NUMBER: _ClassVar[int]
    CROSSING_NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WAIT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    WAIT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CROSSING_CLOSED_FIELD_NUMBER: _ClassVar[int]
    kind: TripAlertKind
    severity: RiskLevel
    reason: str
    time: _timestamp_pb2.Timestamp
    location: LatLng
    cell: str
    risk: float
    distance_meters: float
    dwell: _duration_pb2.Duration
    port_number: str
    port_name: str
    crossing_name: str
    expected_wait_minutes: float
    wait_source: WaitSource
    crossing_closed: bool
    def __init__(self, kind: _Optional[_Union[TripAlertKind, str]] = ..., severity: _Optional[_Union[RiskLevel, str]] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location: _Optional[_Union[LatLng, _Mapping]] = ..., cell: _Optional[str] = ..., risk: _Optional[float] = ..., distance_meters: _Optional[float] = ..., dwell: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., port_number: _Optional[str] = ..., port_name: _Optional[str] = ..., crossing_name: _Optional[str] = ..., expected_wait_minutes: _Optional[float] = ..., wait_source: _Optional[_Union[WaitSource, str]] = ..., crossing_closed: _Optional[bool] = ...) -> None: ...

class MonitorTripResponse(_message.Message):
    __slots__ = ("trip_id", "acknowledged_time", "duplicate", "resumed", "alerts", "positions_processed", "layer_version", "layer_synthetic")
    TRIP_ID_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_TIME_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    LAYER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAYER_SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    trip_id: str
    acknowledged_time: _timestamp_pb2.Timestamp
    duplicate: bool
    resumed: bool
    alerts: _containers.RepeatedCompositeFieldContainer[TripAlert]
    positions_processed: int
    layer_version: str
    layer_synthetic: bool
    def __init__(self, trip_id: _Optional[str] = ..., acknowledged_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duplicate: _Optional[bool] = ..., resumed: _Optional[bool] = ..., alerts: _Optional[_Iterable[_Union[TripAlert, _Mapping]]] = ..., positions_processed: _Optional[int] = ..., layer_version: _Optional[str] = ..., layer_synthetic: _Optional[bool] = ...) -> None: ...

class ReportTripPositionsRequest(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[MonitorTripRequest]
    def __init__(self, positions: _Optional[_Iterable[_Union[MonitorTripRequest, _Mapping]]] = ...) -> None: ...

class ReportTripPositionsResponse(_message.Message):
    __slots__ = ("responses", "error")
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[MonitorTripResponse]
    error: _status_pb2.Status
    def __init__(self, responses: _Optional[_Iterable[_Union[MonitorTripResponse, _Mapping]]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
