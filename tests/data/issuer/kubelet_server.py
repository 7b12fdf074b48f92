#!/usr/bin/python3
"""A stand-in kubelet for tests: serves GET /pods over HTTPS on loopback.

usage: kubelet_server.py CERT KEY PODS_JSON TOKEN
Prints the chosen port on stdout, then serves until killed. /pods answers
401 unless the request carries "Authorization: Bearer TOKEN", 400 unless it
is a GET that accepts application/json. The pod list file is re-read on
every request so tests can change it. Each request is counted in
PODS_JSON.count (one line per request). When PODS_JSON.delay exists, each
answer waits that many seconds first (a slow kubelet).
"""
import http.server
import ssl
import sys
import time

cert, key, pods, token = sys.argv[1:5]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/pods":
            self.send_error(404)
            return
        if self.headers.get("Authorization") != "Bearer " + token:
            self.send_error(401)
            return
        if "application/json" not in (self.headers.get("Accept") or ""):
            self.send_error(400)
            return
        with open(pods + ".count", "a") as f:
            f.write("x\n")
        try:
            with open(pods + ".delay") as f:
                time.sleep(float(f.read().strip() or "0"))
        except FileNotFoundError:
            pass
        with open(pods, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
