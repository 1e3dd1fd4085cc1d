#!/usr/bin/python3
"""serve.py -- serve a store's metrics to Prometheus over HTTP.

    /usr/bin/python3 examples/prometheus/serve.py STORE-DIR [PORT [MODULE]]

Answers every GET with journal_metrics_prometheus() of the store in
STORE-DIR, as Prometheus' text exposition format.  It listens on 127.0.0.1
only (put a reverse proxy in front to expose it); PORT 0 (the default)
takes a free port.  The first line printed is "listening on HOST:PORT".
MODULE defaults to the installed "lmdbjournal".  Scrape config:

    scrape_configs:
      - job_name: lmdbjournal
        static_configs: [{targets: ["127.0.0.1:9464"]}]
"""
import http.server
import sqlite3
import sys

store = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
db = sqlite3.connect(":memory:", check_same_thread=False)
db.enable_load_extension(True)
db.load_extension(sys.argv[3] if len(sys.argv) > 3 else "lmdbjournal")
# Virtual table arguments are not bound parameters: quote the path as SQL.
db.execute("CREATE VIRTUAL TABLE j USING lmdb_journal(path='%s')"
           % store.replace("'", "''"))


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = db.execute("SELECT journal_metrics_prometheus('j')").fetchone()[0].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Metrics)
print("listening on %s:%d" % server.server_address, flush=True)
server.serve_forever()
