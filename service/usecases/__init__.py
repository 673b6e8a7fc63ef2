"""The use cases, transport-free: scoring, compare, departures, hotspots, avoid areas, trip monitoring.

Plain Python over :mod:`geodata`; no gRPC, no Redis, no proto (``tests/test_layering.py`` checks),
so a REST or batch front end could call them unchanged.
"""
