import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BorderObservation(_message.Message):
    __slots__ = ("port_number", "lane", "wait_minutes", "observed_at", "operational_status", "lanes_open", "closed", "hours")
    PORT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    WAIT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    OPERATIONAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    LANES_OPEN_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    port_number: str
    lane: str
    wait_minutes: float
    observed_at: _timestamp_pb2.Timestamp
    operational_status: str
    lanes_open: int
    closed: bool
    hours: str
    def __init__(self, port_number: _Optional[str] = ..., lane: _Optional[str] = ..., wait_minutes: _Optional[float] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operational_status: _Optional[str] = ..., lanes_open: _Optional[int] = ..., closed: _Optional[bool] = ..., hours: _Optional[str] = ...) -> None: ...

class LoadBorderObservationsRequest(_message.Message):
    __slots__ = ("observations", "source")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.RepeatedCompositeFieldContainer[BorderObservation]
    source: str
    def __init__(self, observations: _Optional[_Iterable[_Union[BorderObservation, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class LoadBorderObservationsResponse(_message.Message):
    __slots__ = ("accepted", "stale", "border_data_version")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    BORDER_DATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    stale: int
    border_data_version: str
    def __init__(self, accepted: _Optional[int] = ..., stale: _Optional[int] = ..., border_data_version: _Optional[str] = ...) -> None: ...
