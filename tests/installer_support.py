# SPDX-FileCopyrightText: 2026 NV3DMM Face Tools contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helpers for the installer: tiny wheels built here, and local HTTP servers.

No test touches the internet: packages are wheels of a few hundred bytes
written by `make_wheel`, served from a folder (pip's --find-links) or by
`serve` on 127.0.0.1, which also serves asset files with the headers Hugging
Face sends, honours Range requests, and can drop a connection, stall or send a
corrupted body on purpose. Servers stop when their `with` block ends.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


def make_wheel(folder: Path, name: str, version: str = "1.0", requires: tuple[str, ...] = (),
               body: str = "VALUE = 1\n") -> Path:
    """A pure-Python wheel of package `name` (a module `name/__init__.py` with `body`)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body.encode(),
        f"{dist}/METADATA": ("Metadata-Version: 2.1\n"
                             f"Name: {name}\nVersion: {version}\n"
                             + "".join(f"Requires-Dist: {req}\n" for req in requires)).encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: nv3dmm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(data)}")
    record_lines.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def pip_env() -> dict[str, str]:
    """This process's environment without pip settings (the machine's pip.conf is ignored too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def importable(module: str, site_dir: Path) -> tuple[bool, str]:
    """Whether a fresh Python with `site_dir` on its path can import `module` (and numpy's version)."""
    code = (f"import sys; sys.path.append({str(site_dir)!r})\n"
            "import numpy\n"
            f"try:\n    import {module}\n    ok = True\nexcept ImportError:\n    ok = False\n"
            "print(ok, numpy.__version__, numpy.__file__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ok, version, where = done.stdout.split()
    return ok == "True", f"{version} {where}"


@dataclass
class ServerLog:
    requests: list[tuple[str, str]] = field(default_factory=list)   # (path, Range header)

    def paths(self) -> list[str]:
        return [path for path, _range in self.requests]


@dataclass
class Behaviour:
    """How the server treats a file path: drop the connection after `drop_after` bytes the
    first `drop_times` times, send a corrupted body the first `corrupt_times` times, stall
    until `release` is set, publish a sha256 / size or not."""

    drop_after: int | None = None
    drop_times: int = 0
    corrupt_times: int = 0
    release: threading.Event | None = None
    publish: bool = True
    served: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "nv3dmm-test"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default log
        pass

    def _file(self) -> Path | None:
        root: Path = self.server.root  # type: ignore[attr-defined]
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = (root / rel) if rel else root
        return path

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        log: ServerLog = self.server.log  # type: ignore[attr-defined]
        behaviours: dict[str, Behaviour] = self.server.behaviours  # type: ignore[attr-defined]
        log.requests.append((self.path, self.headers.get("Range", "")))
        path = self._file()
        if path is not None and path.is_dir():
            links = "".join(f'<a href="{p.name}">{p.name}</a><br>' for p in sorted(path.iterdir()))
            self._send(200, f"<html><body>{links}</body></html>".encode(), {"Content-Type": "text/html"})
            return
        if path is None or not path.is_file():
            self._send(404, b"not found", {})
            return
        data = path.read_bytes()
        behaviour = behaviours.get(path.name, Behaviour())
        behaviour.served += 1
        if behaviour.release is not None:
            behaviour.release.wait(timeout=30)
        headers = {"Content-Type": "application/octet-stream"}
        if behaviour.publish:
            headers["X-Linked-Size"] = str(len(data))
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
        body = data
        if behaviour.corrupt_times > 0:
            behaviour.corrupt_times -= 1
            body = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
        status = 200
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[6:-1])
            if start >= len(body):
                self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                return
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            body = body[start:]
            status = 206
        if behaviour.drop_times > 0 and behaviour.drop_after is not None:
            behaviour.drop_times -= 1
            headers["Content-Length"] = str(len(body))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body[:behaviour.drop_after])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self._send(status, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)


@contextlib.contextmanager
def serve(root: Path, behaviours: dict[str, Behaviour] | None = None,
          lifetime_s: float = 300.0) -> Iterator[tuple[str, ServerLog]]:
    """Serve `root` on 127.0.0.1 (a random port) until the block ends, or `lifetime_s` at most."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.root = root  # type: ignore[attr-defined]
    server.log = ServerLog()  # type: ignore[attr-defined]
    server.behaviours = behaviours or {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    timer = threading.Timer(lifetime_s, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.log  # type: ignore[attr-defined]
    finally:
        timer.cancel()
        for behaviour in (behaviours or {}).values():
            if behaviour.release is not None:
                behaviour.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
