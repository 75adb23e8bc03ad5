"""``parzen dashboard``: a live web page over the experiments of a store (``command.py``).

The server (``server.py``) serves the page in ``static/`` (plain HTML, CSS and JavaScript, with
uPlot vendored: no build step, no CDN) and a JSON API over the read model (``model.py``),
which keeps each experiment's trials current by incremental reads.

Nothing is imported here: the CLI's command table (``parzen.cli._main.COMMANDS``) loads
``command.py`` only when ``parzen dashboard`` runs, so ``parzen --help`` never loads the server.
"""
