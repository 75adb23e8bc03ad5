"""The ``parzen dashboard`` command: its arguments, its checks, and the serving loop."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from parzen.cli._registry import command, setup
from parzen.cli._source import add_source_arguments
from parzen.cli.dashboard.server import Dashboard, DashboardServer, is_loopback
from parzen.cli.dashboard.source import StoreSource
from parzen.exceptions import ConfigError, StoreUnavailable

DEFAULT_PORT = 8421
TOKEN_ENV = "PARZEN_DASHBOARD_TOKEN"


@command("dashboard")
def _configure(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, experiment=False)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; reach it "
                        "from elsewhere through an SSH tunnel). Any other address needs a token")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"access token every request must carry (default ${TOKEN_ENV}; prefer "
                        "the variable: a command line is visible to others in ps)")
    p.add_argument("--allow-actions", action="store_true",
                   help="let the page stop runs, cancel queued trials and requeue failed ones "
                        "(read-only without it)")
    setup(p, run_dashboard,
          "  parzen dashboard --mongo mongodb://db.internal:27017/parzen\n"
          "  parzen dashboard --file run.pkl --port 9000\n"
          "  ssh -N -L 8421:127.0.0.1:8421 head-node   # then open http://localhost:8421\n")


def run_dashboard(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: use 0..65535")
    loopback = is_loopback(args.host)
    token = args.token or None
    if not loopback and token is None:
        raise ConfigError(f"--host {args.host} makes the dashboard reachable from other machines: "
                          f"give it an access token (set {TOKEN_ENV}, or --token), or keep "
                          "--host 127.0.0.1 and reach it through an SSH tunnel")
    source = StoreSource(args.mongo, args.file, args.connect_timeout)
    try:
        source.current()
    except StoreUnavailable as exc:
        print(f"warning: {exc}\nserving anyway: the page says so until MongoDB answers",
              file=sys.stderr)
    dashboard = Dashboard(source, allow_actions=args.allow_actions, token=token,
                          loopback=loopback)
    try:
        server = DashboardServer((args.host, args.port), dashboard)
    except OSError as exc:
        source.close()
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
                          "pick another --port (0 picks a free one)") from None
    # The first pages then find the experiments read: a large one takes seconds to read whole.
    threading.Thread(target=dashboard.warm_up, name="dashboard-warm-up", daemon=True).start()
    port = int(server.server_address[1])
    shown = f"[{args.host}]" if ":" in args.host else args.host
    mode = "actions allowed" if args.allow_actions else "read-only"
    print(f"parzen dashboard: {source.where} on http://{shown}:{port}/ ({mode}; Ctrl-C to stop)",
          flush=True)
    if not loopback:
        print(f"warning: listening on {args.host}, reachable from other machines; every request "
              f"must carry the token: open http://HOST:{port}/?token=TOKEN once, the page keeps "
              "it in a cookie. The traffic is not encrypted: an SSH tunnel to 127.0.0.1 is "
              "safer", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        source.close()
    return 0
