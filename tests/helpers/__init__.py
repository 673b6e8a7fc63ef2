"""Helpers shared by test modules: request builders, servers, keys, border data, CLI runs.

Test modules import from here (or get fixtures from ``conftest.py``), never from one another,
so any test module runs alone and in any order.
"""
