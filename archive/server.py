"""Read-only HTTP server of an archive's summary pages (``xsm serve``).

Serves the archive root (pages link to the products and zips), ``/`` redirects to
``/summary/index.html``. Only GET and HEAD exist (``http.server`` answers 501 to anything
else); the catalog database and the pipeline's work space are not served. Binds 127.0.0.1
unless told otherwise.
"""
from __future__ import annotations

import functools
import http.server
import logging
from pathlib import Path

from xsm.archive.catalog import CATALOG_NAME
from xsm.archive.pipeline import SUMMARY_DIR, WORK_DIR
from xsm.products.errors import ArchiveError, ParameterError

log = logging.getLogger(__name__)

#: Top-level names of the archive root that are never served.
HIDDEN = (CATALOG_NAME, f"{CATALOG_NAME}.wal", WORK_DIR)


class SummaryHandler(http.server.SimpleHTTPRequestHandler):
    """GET/HEAD of files under the archive root, nothing private, no directory listings."""

    def send_head(self):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path in ("", "/"):
            self.send_response(302)
            self.send_header("Location", f"/{SUMMARY_DIR}/index.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        # judge the file the request resolves to (after %-decoding and normalisation), not its text
        target = Path(self.translate_path(self.path))
        try:
            parts = target.relative_to(self.directory).parts
        except ValueError:
            parts = ()
        if (not parts or parts[0] in HIDDEN or any(p.startswith(".") for p in parts)
                or path.endswith("/") or target.is_dir()):
            self.send_error(404, "not served")
            return None
        return super().send_head()

    def log_message(self, fmt, *args):  # to logging, not stderr
        log.info("%s %s", self.address_string(), fmt % args)


def make_server(root: str | Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server of ``root`` (call ``serve_forever``; port 0 picks a free port)."""
    root = Path(root)
    if not (root / SUMMARY_DIR / "index.html").is_file():
        raise ArchiveError(f"{root}: no summary pages ({SUMMARY_DIR}/index.html); run `xsm pipeline run` first")
    handler = functools.partial(SummaryHandler, directory=str(root.resolve()))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ParameterError(f"cannot serve on {host}:{port} ({exc.strerror})") from None
