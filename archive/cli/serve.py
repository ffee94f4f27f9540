"""`xsm serve`: Serve the summary pages read-only."""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.archive import ARCHIVE_OPTION
from xsm.archive.cli.common import console, handle_errors


@handle_errors
def serve(
    archive: Path = ARCHIVE_OPTION,
    port: int = typer.Option(8000, "--port", "-p", help="TCP port (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
) -> None:
    """Serve the archive's summary pages read-only (GET/HEAD only) until Ctrl-C."""
    from xsm.archive.server import make_server

    srv = make_server(archive, host, port)
    h, p = srv.server_address[:2]
    console.print(f"serving {archive} read-only on http://{h}:{p}/ (Ctrl-C to stop)", highlight=False)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)
