#!/usr/bin/env python3
"""Small HTTP client for the ingest benchmark (python3 stdlib only).

  client.py ready URL [--timeout S]        poll URL until it answers 200 (bounded)
  client.py deliver URL --key-url U --key K
                                           one signed delivery; exit 0 if answered "stored"
  client.py cold URL --key-url-base U --key K [--n 1000] [--urls 100] [--concurrency 32]
                                           n signed deliveries, delivery i names key URL
                                           number i % urls (its id= differs); prints
                                           "COLD key=value ..." with latency percentiles
  client.py metrics URL --token T NAME...  the values of those series (no labels) in the
                                           admin listener's /metrics, one "NAME VALUE" a line

Signatures follow docs/PROTOCOL.md section 2: base64(HMAC-SHA256(SHA256(key), body)). The key
server (bench/keyserver.py) answers "<key>.<id>" for a key URL with id=<id>.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


def sign(signing_key: str, body: bytes) -> str:
    keyhash = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(keyhash, body, hashlib.sha256).digest()).decode()


def key_for(base: str, key_url: str) -> str:
    ids = urllib.parse.parse_qs(urllib.parse.urlsplit(key_url).query).get("id")
    return f"{base}.{ids[0]}" if ids else base


def payload(key_url: str, record_id: int) -> bytes:
    entity = {
        "id": record_id, "summary": f"Cold-start delivery {record_id}", "recordType": "ServiceTicket",
        "board": {"id": 1, "name": "Service Desk"}, "status": {"id": 16, "name": "New"},
        "company": {"id": 19297, "identifier": "Cobalt", "name": "Cobalt Industries"},
        "contact": {"id": 57960, "name": "Lillie Keebler"}, "severity": "Medium", "impact": "Medium",
        "_info": {"lastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "updatedBy": "jsmith"},
    }
    p = {
        "MessageId": str(uuid.uuid4()), "FromUrl": urllib.parse.urlsplit(key_url).hostname,
        "CompanyId": "Cobalt", "MemberId": "jsmith", "Action": "updated", "Type": "ticket", "ID": record_id,
        "ProductInstanceId": "639c96cab2eb560001dd1324", "PartnerId": "61ddc2817bcddc0001c74208",
        "Entity": json.dumps(entity, separators=(",", ":")), "Metadata": {"key_url": key_url},
        "CallbackObjectRecId": 26604,
    }
    return json.dumps(p, separators=(",", ":")).encode()


def cmd_ready(a) -> int:
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(a.url, timeout=1) as r:
                if r.status == 200:
                    return 0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    print(f"client.py: {a.url} not ready after {a.timeout}s", file=sys.stderr)
    return 1


def cmd_deliver(a) -> int:
    body = payload(a.key_url, 1)
    req = urllib.request.Request(a.url + "?recordId=1", data=body, method="POST", headers={
        "Content-Type": "application/json", "x-content-signature": sign(key_for(a.key, a.key_url), body)})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    print(f"{status} {text}")
    return 0 if status == 200 and '"status":"stored"' in text and "verification" not in text else 1


def cmd_metrics(a) -> int:
    req = urllib.request.Request(a.url, headers={"Authorization": f"Bearer {a.token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in a.names:
            values[name] = value
    for name in a.names:
        print(f"{name} {values.get(name, 0)}")
    return 0


async def cold(a) -> dict:
    u = urllib.parse.urlsplit(a.url)
    next_i = 0
    lat: list[float] = []
    answers: dict[str, int] = {}
    errors = 0
    key_urls = [f"{a.key_url_base}{uuid.UUID(int=i + 1)}" for i in range(a.urls)]

    async def worker() -> None:
        nonlocal next_i, errors
        reader = writer = None
        while next_i < a.n:
            i = next_i
            next_i += 1
            key_url = key_urls[i % a.urls]
            body = payload(key_url, 70000 + i)
            head = (f"POST {u.path}?recordId={70000 + i} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                    f"Content-Type: application/json\r\n"
                    f"x-content-signature: {sign(key_for(a.key, key_url), body)}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(u.hostname, u.port)
                t0 = time.perf_counter()
                writer.write(head + body)
                await writer.drain()
                status_line = await reader.readline()
                status = int(status_line.split()[1])
                length = 0
                close = False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                text = (await reader.readexactly(length)).decode(errors="replace")
                lat.append((time.perf_counter() - t0) * 1000)
                kind = str(status)
                if status == 200:
                    kind = "stored" if '"status":"stored"' in text and "verification" not in text else "200-other"
                answers[kind] = answers.get(kind, 0) + 1
                if close:
                    writer.close()
                    writer = None
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                errors += 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(a.concurrency)))
    elapsed = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")

    return {"n": a.n, "answered": len(lat), "stored": answers.get("stored", 0),
            "answers": ",".join(f"{k}:{v}" for k, v in sorted(answers.items())) or "-",
            "errors": errors, "elapsed_s": f"{elapsed:.3f}", "p50_ms": f"{pct(50):.1f}",
            "p99_ms": f"{pct(99):.1f}", "max_ms": f"{lat[-1] if lat else float('nan'):.1f}"}


def cmd_cold(a) -> int:
    r = asyncio.run(cold(a))
    print("COLD " + " ".join(f"{k}={v}" for k, v in r.items()))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("url")
    r.add_argument("--timeout", type=float, default=30)
    d = sub.add_parser("deliver")
    d.add_argument("url")
    d.add_argument("--key-url", required=True)
    d.add_argument("--key", required=True)
    c = sub.add_parser("cold")
    c.add_argument("url")
    c.add_argument("--key-url-base", required=True, help="key URL up to and including 'id='")
    c.add_argument("--key", required=True)
    c.add_argument("--n", type=int, default=1000)
    c.add_argument("--urls", type=int, default=100)
    c.add_argument("--concurrency", type=int, default=32)
    m = sub.add_parser("metrics")
    m.add_argument("url")
    m.add_argument("--token", required=True)
    m.add_argument("names", nargs="+")
    a = ap.parse_args()
    return {"ready": cmd_ready, "deliver": cmd_deliver, "cold": cmd_cold, "metrics": cmd_metrics}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
