"""The ``routerisk`` command: one module per command group (``app`` assembles them), shared
options and client plumbing in ``common``. A client of the server; ``geodata`` for local commands."""
