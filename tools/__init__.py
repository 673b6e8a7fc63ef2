"""Developer tooling that is not part of the service: the reliability runs (``python -m tools.reliability``)."""
