"""``python -m service.cli``: the ``routerisk`` command without its console script."""

from service.cli.app import main

main()
