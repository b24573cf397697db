"""Abuse a real `opencdp serve` would meet on a network: huge bodies (memory stays flat) and forged
forwarded headers (sign-in throttling keys on the real peer). On SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from conftest import SERVER_KEY, SERVER_TOKEN
from opencdp.testing import ServerUrl, running_server

HUNDRED_MB = 100 * 1024 * 1024
BASIC = "Basic " + base64.b64encode(f"{SERVER_KEY}:{SERVER_TOKEN}".encode()).decode()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_huge(base: str, path: str, content_type: str, *, chunked: bool, auth: bool = False) -> int:
    """Send (or try to send) 100 MB to a route over a raw socket; the status the server answered with."""
    address = urlsplit(base)
    head = [f"POST {path} HTTP/1.1", f"Host: {address.netloc}", f"Content-Type: {content_type}", "Connection: close"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUNDRED_MB}")
    if auth:
        head.append(f"Authorization: {BASIC}")
    block = b"a" * (1024 * 1024)
    piece = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for _ in range(100):
                sock.sendall(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed while we were still sending: what it should do
            pass
        answer = b""
        try:
            while b"\r\n" not in answer and (data := sock.recv(4096)):
                answer += data
        except OSError:
            pass
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_huge_bodies_are_refused_while_memory_stays_flat(environment, tmp_path):
    with running_server(environment, tmp_path) as base:
        assert isinstance(base, ServerUrl)
        httpx.get(f"{base}/ui/login")
        before = rss(base.pid)
        for chunked in (False, True):
            assert send_huge(base, "/oauth/token", "application/x-www-form-urlencoded", chunked=chunked) == 413
            assert send_huge(base, "/ui/login", "application/x-www-form-urlencoded", chunked=chunked) == 413
            assert send_huge(base, "/v2.1/orders", "application/json", chunked=chunked, auth=True) == 413
            assert send_huge(base, "/v1.2/events", "application/json", chunked=chunked) == 413
        assert rss(base.pid) - before < 200 * 1024 * 1024
        assert httpx.get(f"{base}/v2.1/orders?referenceId=x", auth=(SERVER_KEY, SERVER_TOKEN)).json()["items"] == []


def failed_sign_ins(browser: httpx.Client, headers: dict[str, str]) -> list[int]:
    """Twelve sign-ins with wrong credentials, each claiming (X-Forwarded-For) another client address."""
    statuses = []
    for attempt in range(12):
        csrf = browser.get("/ui/login").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        sent = browser.post(
            "/ui/login",
            data={"csrf": csrf, "client_key": "ck_wrong", "api_token": "wrong", "next": ""},
            headers={"X-Forwarded-For": f"203.0.113.{attempt}", **headers},
        )
        statuses.append(sent.status_code)
    return statuses


def test_forwarded_headers_are_not_believed_from_an_untrusted_peer(environment, tmp_path):
    """Sign-in throttling keys on the peer: a new X-Forwarded-For per attempt does not reset it."""
    with running_server(environment, tmp_path) as base, httpx.Client(base_url=base) as browser:
        statuses = failed_sign_ins(browser, {"X-Forwarded-Proto": "https"})
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
        assert "secure" not in browser.get("/ui/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]


def test_forwarded_headers_are_believed_from_a_listed_proxy(environment, tmp_path):
    env = {**environment, "OPENCDP_TRUSTED_PROXIES": "127.0.0.1"}
    with running_server(env, tmp_path) as base, httpx.Client(base_url=base) as browser:
        statuses = failed_sign_ins(browser, {})
        assert statuses == [401] * 12  # each attempt came from another client, as the proxy says
        behind_tls = browser.get("/ui/login", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in behind_tls.headers["set-cookie"].lower()
