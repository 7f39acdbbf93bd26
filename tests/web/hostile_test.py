#!/usr/bin/env python3
"""`reslens serve` against careless and hostile clients, over real sockets (standard library only).

Each check states what must hold (docs/report.md, "Limits and security"):
- slow clients (a header line every half second) and hundreds of idle connections never keep a
  normal request waiting, and a slow request gets 408 at its whole-request deadline;
- 200 clients connecting at once are all answered (the backlog is sized for them);
- a 100 MB chunked body, a gzip bomb (500 MB of zeros in 0.5 MB) and a 64 MiB header line are
  refused (413 / 431) without the server's memory growing by more than a few MB;
- unknown encodings 415, non-JSON POSTs 415 (a cross-origin form cannot queue jobs), a Host that
  is not this server's 403 (DNS rebinding), and with --token no API call without it (401) but a
  leaving page's cancel beacon (POST /api/jobs/ID/cancel, no body), which cancels nothing for a
  page on another origin that cannot know a job's id (404);
- job ids are unguessable, a second server on the same port refuses to start, and a model file
  truncated under a running server gets 503 naming it instead of killing the server with SIGBUS.

Usage: hostile_test.py RESLENS_CLI MODEL  (exit 0: every check held; 1: the failed checks listed).
"""
import gzip
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

CLI, MODEL = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f" ({detail})" if detail and not ok else ""), flush=True)
    if not ok:
        failures.append(what)


class Server:
    def __init__(self, *args, model=MODEL):
        self.proc = subprocess.Popen([CLI, "serve", "--port", "0", "--threads", "1", "--model", model, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/(#token=\S+)?", line)
        if not m:
            raise SystemExit(f"the server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))

    def rss_peak_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.returncode


def raw(port, data, timeout=10, shut=True):
    """Sends bytes, returns (status, body) of the reply (status 0: no reply)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_reply(s)
    finally:
        s.close()


def read_reply(s):
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (ConnectionResetError, socket.timeout):
        pass
    m = re.match(rb"HTTP/1\.1 (\d+)", out)
    return (int(m.group(1)) if m else 0), out.split(b"\r\n\r\n", 1)[-1]


def request(port, method, path, body=b"", headers=None, timeout=30):
    h = {"Host": f"127.0.0.1:{port}", "Content-Length": str(len(body))}
    if method == "POST":
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None) + "\r\n"
    return raw(port, head.encode() + body, timeout)


def timed_info(port):
    t = time.monotonic()
    status, _ = request(port, "GET", "/api/info")
    return status, time.monotonic() - t


PREDICT = b'{"prompt": "Once upon a time"}'

server = Server("--request-timeout", "3")
port = server.port
check(request(port, "POST", "/api/predict", PREDICT)[0] == 200, "a normal request is answered")

# Slow clients: 16 connections each sending a header line every 0.5 s.
stop_slow = threading.Event()
slow_status = []


def slow_client():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET /api/info HTTP/1.1\r\n")
        while not stop_slow.is_set():
            s.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.5)
    except OSError:
        pass  # the server answered 408 and closed
    slow_status.append(read_reply(s)[0])
    s.close()


slow = [threading.Thread(target=slow_client) for _ in range(16)]
for t in slow:
    t.start()
time.sleep(0.5)
worst = max(timed_info(port)[1] for _ in range(5))
check(worst < 1.0, "16 slow clients do not delay a normal request", f"{worst:.2f} s")
time.sleep(3.5)
stop_slow.set()
for t in slow:
    t.join()
check(slow_status.count(408) == 16, "slow requests get 408 at their 3 s deadline", str(slow_status))

# Idle connections.
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
status, took = timed_info(port)
check(status == 200 and took < 1.0, "300 idle connections do not delay a normal request", f"{status} in {took:.2f} s")
for s in idle:
    s.close()

# 200 clients at once.
results = []


def one_client():
    try:
        results.append(request(port, "GET", "/api/info", timeout=30)[0])
    except OSError as e:
        results.append(str(e))


clients = [threading.Thread(target=one_client) for _ in range(200)]
for t in clients:
    t.start()
for t in clients:
    t.join()
check(results.count(200) == 200, "200 clients connecting at once are all answered",
      str([r for r in results if r != 200][:5]))

base = server.rss_peak_kb()

# A 100 MB chunked body.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          f"Transfer-Encoding: chunked\r\n\r\n".encode())
chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
sent = 0
try:
    for _ in range(100):
        s.sendall(chunk)
        sent += 1
except OSError:
    pass
status, body = read_reply(s)
s.close()
check(status == 413, "a 100 MB chunked body gets 413", f"{status} after {sent} MB sent")

# A gzip bomb: 500 MB of spaces in about half a megabyte.
z = zlib.compressobj(9, zlib.DEFLATED, 31)
bomb = b"".join(z.compress(b" " * (1 << 20)) for _ in range(500)) + z.flush()
status, body = request(port, "POST", "/api/predict", bomb, {"Content-Encoding": "gzip"})
check(status == 413, f"a gzip bomb ({len(bomb) // 1024} KB -> 500 MB) gets 413", f"{status} {body[:100]!r}")
status, body = request(port, "POST", "/api/predict", gzip.compress(PREDICT), {"Content-Encoding": "gzip"})
check(status == 200, "a gzip body is decoded", f"{status} {body[:100]!r}")
status, body = request(port, "POST", "/api/predict", zlib.compress(PREDICT), {"Content-Encoding": "deflate"})
check(status == 200, "a deflate body is decoded", f"{status} {body[:100]!r}")

# A 64 MiB header line.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    s.sendall(b"GET /api/info HTTP/1.1\r\nX-Big: ")
    for _ in range(64):
        s.sendall(b"a" * (1 << 20))
except OSError:
    pass
status, _ = read_reply(s)
s.close()
check(status == 431, "a 64 MiB header line gets 431", str(status))
grown = (server.rss_peak_kb() - base) / 1024
check(grown < 16, "the big bodies and headers cost the server < 16 MB", f"{grown:.1f} MB")

# Encodings, content types, Host, methods.
check(request(port, "POST", "/api/predict", PREDICT, {"Content-Encoding": "br"})[0] == 415, "an unknown Content-Encoding gets 415")
check(request(port, "POST", "/api/predict", PREDICT, {"Content-Type": "text/plain"})[0] == 415,
      "a text/plain POST (a cross-origin form's) gets 415")
check(request(port, "POST", "/api/predict", PREDICT, {"Host": "attacker.example"})[0] == 403, "a foreign Host gets 403")
check(request(port, "GET", "/api/info", headers={"Host": "localhost:1"})[0] == 200, "Host: localhost is accepted")
check(request(port, "POST", "/api/predict", PREDICT, {"Transfer-Encoding": "chunked"})[0] == 400,
      "Content-Length with Transfer-Encoding gets 400")
check(raw(port, b"GET / HTTP/2.0\r\n\r\n")[0] == 505, "HTTP/2.0 in a request line gets 505")
check(raw(port, b"garbage\r\n\r\n")[0] == 400, "a malformed request line gets 400")
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(PREDICT)}\r\n"
          "Host: 127.0.0.1\r\nExpect: 100-continue\r\n\r\n".encode())
first = s.recv(100)
s.sendall(PREDICT)
status, _ = read_reply(s)
s.close()
check(first.startswith(b"HTTP/1.1 100 Continue") and status == 403, "Expect: 100-continue is answered (then Host checked)",
      f"{first[:30]!r} {status}")

# Job ids.
ids = set()
for _ in range(3):
    status, body = request(port, "POST", "/api/predict?async=1", PREDICT)
    ids.add(re.search(rb'"job":"([^"]+)"', body).group(1).decode())
check(len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), "job ids are 128-bit random hex", str(ids))

# A second server on the same port.
second = subprocess.run([CLI, "serve", "--port", str(port), "--model", MODEL], capture_output=True, text=True, timeout=60)
check(second.returncode != 0 and "in use" in second.stderr, "a second server on the same port refuses to start",
      f"exit {second.returncode}: {second.stderr.strip()}")
check(server.alive() and timed_info(port)[0] == 200, "the server is still serving")
check(server.stop() == 0, "SIGTERM stops the server with exit 0")

# A token.
server = Server("--token", "s3cret")
port = server.port
check(request(port, "GET", "/api/info")[0] == 401, "with --token, an API call without it gets 401")
check(request(port, "GET", "/api/info", headers={"Authorization": "Bearer wrong"})[0] == 401, "a wrong token gets 401")
check(request(port, "GET", "/api/info", headers={"Authorization": "Bearer s3cret"})[0] == 200, "the token opens the API")
# A page on another origin may send the beacon a leaving explorer sends (no body, no Content-Type, no
# token); without a job's id, which it cannot read, it reaches no job. With a body it needs the token.
guess = "/api/jobs/" + secrets.token_hex(16) + "/cancel"
beacon = {"Content-Type": None, "Origin": "http://attacker.example"}
check(request(port, "POST", guess, headers=beacon)[0] == 404, "a cross-origin cancel beacon with a guessed id gets 404")
check(request(port, "POST", guess, b"{}", headers={**beacon, "Content-Type": "text/plain"})[0] == 401,
      "a cancel with a body and no token gets 401")
server.stop()

# A model file truncated under the server (its float32 weights are read from a memory map).
tmp = tempfile.mkdtemp(prefix="reslens-hostile-")
try:
    model = os.path.join(tmp, "model.gguf")
    shutil.copy(MODEL, model)
    server = Server(model=model)
    port = server.port
    check(request(port, "POST", "/api/predict", PREDICT)[0] == 200, "the copied model answers")
    with open(model, "r+b") as f:
        f.truncate(os.path.getsize(model) // 2)
    status, body = request(port, "POST", "/api/predict", PREDICT)
    check(status == 503 and b"changed on disk" in body and model.encode() in body,
          "a truncated model file gets 503 naming it", f"{status} {body[:200]!r}")
    check(server.alive(), "the server survives its model file's truncation")
    # A truncation in the middle of a job (a read past the new end) raises SIGBUS: one line, exit 3.
    server.proc.send_signal(signal.SIGBUS)
    rc = server.proc.wait(15)
    err = server.proc.stderr.read()
    check(rc == 3 and "truncated on disk" in err, "a SIGBUS is one line and exit 3, not a signal death", f"{rc} {err!r}")
finally:
    shutil.rmtree(tmp)

print(f"{len(failures)} failed" if failures else "all checks held")
sys.exit(1 if failures else 0)
