"""A stand-in of the Kubernetes API's TokenReview and SubjectAccessReview endpoints for
benchmarking `--auth-mode kubernetes` (no API server runs on the bench machine): every token is
user `bench`, allowed everything.

    python3 crates/bench/kube_review_stand_in.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Reviews(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/tokenreviews"):
            status = {"authenticated": True, "user": {"username": "bench", "groups": ["system:authenticated"]}}
        elif self.path.endswith("/subjectaccessreviews"):
            status = {"allowed": True}
        else:
            self.send_error(404)
            return
        body = json.dumps({"status": status}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Reviews).serve_forever()
