#!/usr/bin/env python3
"""A stand-in for Manage's callback key endpoint, for the ingest benchmark.

Answers every GET over HTTPS with {"signing_key":"<key>"} and Content-Type text/html (as a
real Manage site does). The key is --key, or "<key>.<id>" when the URL has an id= query
parameter, so a receiver that mixed up two key URLs would fail verification.

  GET /__count      -> {"fetches":N,"urls":M}  (not counted itself)
  --port 0          -> an ephemeral port; the port is printed on stdout's first line
  --delay-ms N      -> every key answer waits N ms first (a slow Manage site)
  --count-file F    -> the final count is written to F on SIGTERM/SIGINT
"""
import argparse
import http.server
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse


def key_for(base: str, target: str) -> str:
    ids = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("id")
    return f"{base}.{ids[0]}" if ids else base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True, help="PEM certificate")
    ap.add_argument("--key-file", required=True, help="PEM private key of --cert")
    ap.add_argument("--key", required=True, help="signing key (base)")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--count-file")
    args = ap.parse_args()

    lock = threading.Lock()
    fetches = 0
    urls: set[str] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            nonlocal fetches
            if self.path == "/__count":
                with lock:
                    body = json.dumps({"fetches": fetches, "urls": len(urls)}).encode()
                self._send(200, body, "application/json")
                return
            with lock:
                fetches += 1
                urls.add(self.path)
            if args.delay_ms > 0:
                time.sleep(args.delay_ms / 1000.0)
            body = json.dumps({"signing_key": key_for(args.key, self.path)}).encode()
            self._send(200, body, "text/html; charset=utf-8")

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

        def handle_error(self, request, client_address):  # handshake resets etc.: quiet
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key_file)
    srv = Server((args.host, args.port), Handler)
    # The handshake runs in the handler thread (first read), not in the accept loop.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)

    def write_count() -> None:
        if args.count_file:
            with lock, open(args.count_file, "w") as f:
                f.write(f"{fetches}\n")

    def on_signal(signum, frame):
        write_count()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
    write_count()
    return 0


if __name__ == "__main__":
    sys.exit(main())
