"""The CBP feed parsers with the seed ports as their ports, as the service calls them.

:mod:`geodata.cbp_feed` takes the ports to keep (``zones``) from its caller and reads no seeds;
the tests written against the 24 seed ports import the parsers from here.
"""

from __future__ import annotations

from collections.abc import Mapping

from geodata import cbp_feed
from geodata.border import WaitObservation
from geodata.cbp_feed import PortStatus
from seeds import port_zones

Parsed = tuple[list[WaitObservation], list[PortStatus]]


def parse_feed(text: str | bytes, *, zones: Mapping[str, str] | None = None) -> Parsed:
    return cbp_feed.parse_feed(text, zones=port_zones() if zones is None else zones)


def parse_bwt_json(text: str | bytes, *, zones: Mapping[str, str] | None = None) -> Parsed:
    return cbp_feed.parse_bwt_json(text, zones=port_zones() if zones is None else zones)


def parse_bwt_xml(text: str | bytes, *, zones: Mapping[str, str] | None = None) -> Parsed:
    return cbp_feed.parse_bwt_xml(text, zones=port_zones() if zones is None else zones)


__all__ = ["parse_bwt_json", "parse_bwt_xml", "parse_feed", "port_zones"]
