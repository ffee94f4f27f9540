"""Helpers of the pipeline tests: triggers, the flaky HTTP source, configurations."""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import http.server
import threading
from pathlib import Path

#: The processing date stamped on labels and zips (the same in every run compared).
PROCESSING_DATE = _dt.date(2026, 1, 15)
SIM_DATE, SIM_START_S, SIM_DURATION_S = "2024-05-01", 36000.0, 1200.0


def write_trigger(package: Path) -> Path:
    data = package.read_bytes()
    trg = package.with_suffix(".trg")
    trg.write_text(f"size={len(data)}\nmd5={hashlib.md5(data).hexdigest()}\n")
    return trg


#: The session id of the corrupted copy (same length as a real one).
CORRUPT_SID = "XSM01ZZZCHO0000000NNNN24122095959000"


class FlakyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; the first GET of ``truncate`` is cut short, of ``fail`` answers 503."""

    truncate: str = ""
    fail: str = ""
    counts: dict = {}

    def do_GET(self):  # noqa: N802 - http.server API
        name = self.path.lstrip("/")
        n = self.counts[name] = self.counts.get(name, 0) + 1
        if name == self.fail and n == 1:
            self.send_error(503, "busy, try again")
            return
        if name == self.truncate and n == 1:
            data = (Path(self.directory) / name).read_bytes()[:50000]
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_flaky(directory: Path, truncate: str, fail: str):
    """An HTTP source on 127.0.0.1 (port chosen by the system) over ``directory``; yields
    (url, handler class with the request counts). The server thread stops on exit."""
    handler = type("Flaky", (FlakyHandler,), {"truncate": truncate, "fail": fail, "counts": {}})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/", handler
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=10)


def config_for(root: Path, inbox: str, caldb: Path, **kw):
    from xsm.archive.pipeline import PipelineConfig

    return PipelineConfig(root=root, inbox=inbox, caldb=caldb, processing_date=PROCESSING_DATE, **kw)
