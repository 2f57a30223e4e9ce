"""nginx `proxy_cache` in front of the fake Intuit: the configuration a user would reach for
instead of qbproxy (URL-and-body keyed, 200s kept five minutes, Intuit's no-cache headers
ignored), generated into a private directory and run on loopback in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.common import find_binary

INSTALL_HINT = (
    "nginx is not installed: `apt-get install -y nginx-light` (Debian/Ubuntu; "
    "`make bench` installs it), or put an nginx binary on PATH"
)


class NginxUnavailable(RuntimeError):
    """nginx is missing or would not start; the harness reports it and goes on."""


def config(
    *,
    workdir: Path,
    port: int,
    upstream_port: int,
    valid_seconds: float = 300.0,
    workers: str = "auto",
    run_as_root: bool = False,
) -> str:
    """The whole nginx.conf. Cache key: method + URI (query string included) + request body,
    so a POST application/text query is keyed by its text; `client_body_buffer_size` keeps
    bodies in memory, where `$request_body` can see them."""
    valid = max(1, round(valid_seconds))
    user = "user root;\n" if run_as_root else ""
    return f"""{user}worker_processes {workers};
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/scratch/body;
    proxy_temp_path {workdir}/scratch/proxy;
    fastcgi_temp_path {workdir}/scratch/fastcgi;
    uwsgi_temp_path {workdir}/scratch/uwsgi;
    scgi_temp_path {workdir}/scratch/scgi;
    proxy_cache_path {workdir}/cache levels=1:2 keys_zone=qbo:64m max_size=2g
                     inactive=60m use_temp_path=off;
    upstream intuit {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 16m;
        client_body_buffer_size 1m;
        location / {{
            proxy_pass http://intuit;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
            proxy_buffers 64 16k;
            proxy_cache qbo;
            proxy_cache_methods GET HEAD POST;
            proxy_cache_key "$request_method$request_uri$request_body";
            proxy_cache_valid 200 {valid}s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


async def _wait_port(port: int, proc: asyncio.subprocess.Process, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise NginxUnavailable(f"nginx exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise NginxUnavailable(f"nginx did not listen on :{port} within {within:.0f} s")


@contextlib.asynccontextmanager
async def running(
    workdir: Path, port: int, upstream_port: int, valid_seconds: float = 300.0
) -> AsyncIterator[str]:
    """Start nginx (foreground, its own prefix under `workdir`) and yield its base URL."""
    binary = find_binary("nginx")
    if binary is None:
        raise NginxUnavailable(INSTALL_HINT)
    for sub in ("scratch", "cache"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    # Workers may run as another user: let them reach the cache and temp directories.
    for folder in (workdir, workdir / "scratch", workdir / "cache"):
        folder.chmod(0o755)
    conf = workdir / "nginx.conf"
    conf.write_text(
        config(
            workdir=workdir,
            port=port,
            upstream_port=upstream_port,
            valid_seconds=valid_seconds,
            run_as_root=os.geteuid() == 0,
        )
    )
    argv = [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]
    check = await asyncio.create_subprocess_exec(
        *argv, "-t", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await check.communicate()
    if check.returncode != 0:
        raise NginxUnavailable(f"nginx rejected its config: {out.decode(errors='replace')}")
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await _wait_port(port, proc, 15)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
