"""Proto ⇄ domain for the admin service: border wait observations.

Light on purpose (the stubs and :mod:`geodata.border` only): the CLI's ``border load`` and
``border poll`` use it without loading the server's modules.
"""

from __future__ import annotations

from geodata.border import WaitObservation
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb


def observation_from_proto(message: admin_pb.BorderObservation) -> WaitObservation:
    return WaitObservation(
        port_number=message.port_number,
        lane=message.lane,
        wait_minutes=message.wait_minutes if message.HasField("wait_minutes") else None,
        observed_at_s=int(message.observed_at.seconds),
        operational_status=message.operational_status,
        lanes_open=message.lanes_open,
        closed=message.closed,
        hours=message.hours,
    )


def observation_to_proto(obs: WaitObservation) -> admin_pb.BorderObservation:
    message = admin_pb.BorderObservation(
        port_number=obs.port_number,
        lane=obs.lane,
        operational_status=obs.operational_status,
        lanes_open=obs.lanes_open,
        closed=obs.closed,
        hours=obs.hours,
    )
    if obs.wait_minutes is not None:
        message.wait_minutes = obs.wait_minutes
    message.observed_at.FromSeconds(obs.observed_at_s)
    return message
