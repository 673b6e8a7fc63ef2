"""The ``routerisk`` command line: the app, assembled from one module per command group.

Data goes to stdout, messages to stderr; errors are one line and a non-zero exit:
1 unexpected, 2 bad input (route file, options), 3 server unreachable or not ready.
"""

from __future__ import annotations

import typer

from service.cli.avoid import avoid
from service.cli.batch import score_batch
from service.cli.border import border_app, crossings_app
from service.cli.help import readable
from service.cli.layers import layers_app
from service.cli.map import map_route
from service.cli.monitor import monitor
from service.cli.score import compare, departures, score
from service.cli.serve import new_key, serve

app = typer.Typer(help="Score freight truck routes for cargo-security risk.", no_args_is_help=True)
app.add_typer(layers_app, name="layers")
app.add_typer(border_app, name="border")
app.add_typer(crossings_app, name="crossings")
app.command("score-batch")(score_batch)
app.command("map")(map_route)
app.command("avoid")(avoid)
app.command("monitor")(monitor)
app.command()(serve)
app.command()(score)
app.command("new-key")(new_key)
app.command()(compare)
app.command()(departures)


def main() -> None:
    """Console-script entry point: the app as a click command, its help labels made readable."""
    readable(typer.main.get_command(app))()
