#!/usr/bin/env python3
# raws2s.py — a raw server-to-server stream for the integration tests, driven
# by a list of steps on the command line (run it inside a node: node_exec).
#
#   python3 raws2s.py [--port 5269] SRC DST STEP...
#
# Connects from SRC (an address of the node) to [DST]:PORT, then runs the
# steps in order. Each step is a word followed by a fixed number of arguments:
#
#   header FROM TO         send a stream header (FROM "-": no 'from'); also
#                          after STARTTLS / SASL (a restart clears the buffer)
#   features LABEL         wait (5 s) for </stream:features>; exit 2 if none
#   starttls CERT KEY      <starttls/>, wait for <proceed/>, TLS with that client
#                          certificate (CERT "-": none); exit 2 if STARTTLS was
#                          not offered in the last features or not accepted
#   external AUTHZID       SASL EXTERNAL (AUTHZID "-": empty, '='); prints
#                          "sasl: <success.../>" or "sasl: <failure...>"; exit 2
#                          unless success (and if EXTERNAL was not offered)
#   send XML               send raw text (UTF-8)
#   sleep SECS
#   wait LABEL ERE SECS    wait for ERE (Python re, DOTALL) in what came in;
#                          print "LABEL: <the text up to the match>" or
#                          "LABEL: (no match in SECS s) <what came>"
#   expect LABEL ERE SECS  the same, but exit 2 if there is no match
#   drain LABEL SECS       read for SECS seconds; print "LABEL: <everything>"
#   closed LABEL SECS      the peer is expected to close the stream: read until
#                          it does (up to SECS) and print "LABEL: closed: <what
#                          came>", then "[closed by peer]" and exit 0 (the steps
#                          after it do not run); if it does not, print "LABEL:
#                          (still open after SECS s) <what came>" and go on
#
# Output: first "connected: SRC SPORT -> DST PORT", then "plan: N results"
# (N: how many of the steps read, so a caller can tell a run that stopped
# early), then one "LABEL: text" line per step that reads (newlines flattened,
# at most 2000 characters). When the peer closes the connection the script
# prints "closed: <what came last>" and "[closed by peer]" and exits 3 without
# running the remaining steps (except during a closed step, see there); after
# the last step it prints "[still open]", sends </stream:stream> and exits 0.
# Exit 2: a required step failed, 1: bad arguments or a connection error (the
# message on stderr).
import base64
import re
import socket
import ssl
import sys
import time

NS = ("xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
      "xmlns:db='jabber:server:dialback'")
ARITY = {"header": 2, "features": 1, "starttls": 2, "external": 1, "send": 1, "sleep": 1,
         "wait": 3, "expect": 3, "drain": 2, "closed": 2}
READS = ("features", "starttls", "external", "wait", "expect", "drain", "closed")


def usage(msg):
    sys.stderr.write("raws2s.py: %s\n" % msg)
    sys.exit(1)


args = sys.argv[1:]
port = 5269
if args[:1] == ["--port"]:
    port = int(args[1])
    args = args[2:]
if len(args) < 2:
    usage("usage: raws2s.py [--port N] SRC DST STEP...")
src, dst, rest = args[0], args[1], args[2:]
steps = []
while rest:
    word = rest[0]
    if word not in ARITY:
        usage("unknown step %r" % word)
    n = ARITY[word]
    if len(rest) < n + 1:
        usage("step %r needs %d argument(s)" % (word, n))
    steps.append((word, rest[1:n + 1]))
    rest = rest[n + 1:]

sock = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET)
sock.bind((src, 0))
sock.settimeout(5)
try:
    sock.connect((dst, port))
except OSError as e:
    usage("connect to [%s]:%d failed: %s" % (dst, port, e))
print("connected: %s %d -> %s %d" % (sock.getsockname()[:2] + sock.getpeername()[:2]), flush=True)
print("plan: %d results" % sum(1 for word, _ in steps if word in READS), flush=True)

buf = ""
features = ""
to_host = dst


def say(label, text):
    text = text.replace("\r", " ").replace("\n", " ")
    print("%s: %s" % (label, text[:2000]), flush=True)


closing_label = None  # set during a closed step: a close is the expected outcome


def closed():
    if closing_label is not None:
        say(closing_label, "closed: " + buf)
        print("[closed by peer]", flush=True)
        sys.exit(0)
    say("closed", buf)
    print("[closed by peer]", flush=True)
    sys.exit(3)


def read_some(deadline):
    """Read what arrives before deadline into buf; False on timeout."""
    global buf
    sock.settimeout(max(0.05, deadline - time.time()))
    try:
        data = sock.recv(65536)
    except (socket.timeout, ssl.SSLWantReadError):
        return False
    except (ConnectionResetError, ssl.SSLError, OSError):
        data = b""
    if not data:
        closed()
    buf += data.decode("utf-8", "replace")
    return True


def until(pattern, secs):
    """The text up to and including the first match of pattern, or None."""
    global buf
    end = time.time() + secs
    while True:
        m = re.search(pattern, buf, re.S)
        if m:
            found, buf = buf[:m.end()], buf[m.end():]
            return found
        if time.time() >= end:
            return None
        read_some(end)


def send(text):
    try:
        sock.sendall(text.encode("utf-8", "surrogateescape"))
    except OSError:
        closed()


for word, a in steps:
    if word == "header":
        frm, to_host = a
        attr_from = "" if frm == "-" else " from='%s'" % frm
        buf = ""
        send("<?xml version='1.0'?><stream:stream %s%s to='%s' version='1.0'>" % (NS, attr_from, to_host))
    elif word == "features":
        features = until(r"</stream:features>", 5) or ""
        say(a[0], features or "(none)")
        if not features:
            sys.exit(2)
    elif word == "starttls":
        cert, key = a
        if "starttls" not in features:
            say("starttls", "not offered")
            sys.exit(2)
        send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        r = until(r"<proceed[^>]*>|<failure[^>]*>", 5)
        if not r or "proceed" not in r:
            say("starttls", r or "no answer")
            sys.exit(2)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert != "-":
            ctx.load_cert_chain(cert, key)
        try:
            sock = ctx.wrap_socket(sock, server_hostname=to_host)
        except (ssl.SSLError, OSError) as e:
            say("starttls", "handshake failed: %s" % e)
            closed()
        buf = ""
        say("starttls", "proceed; %s" % sock.version())
    elif word == "external":
        if "EXTERNAL" not in features:
            say("sasl", "EXTERNAL not offered")
            sys.exit(2)
        authz = "=" if a[0] == "-" else base64.b64encode(a[0].encode()).decode()
        send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>%s</auth>" % authz)
        r = until(r"<(success|failure)[^>]*?(/>|>.*?</(success|failure)>)", 5)
        say("sasl", r or "(no answer)")
        if not r or "<success" not in r:
            sys.exit(2)
        buf = ""
    elif word == "send":
        send(a[0])
    elif word == "sleep":
        time.sleep(float(a[0]))
    elif word in ("wait", "expect"):
        label, pattern, secs = a
        r = until(pattern, float(secs))
        say(label, r if r is not None else "(no match in %s s) %s" % (secs, buf))
        if r is None and word == "expect":
            sys.exit(2)
    elif word == "drain":
        end = time.time() + float(a[1])
        while time.time() < end:
            read_some(end)
        say(a[0], buf)
        buf = ""
    elif word == "closed":
        closing_label = a[0]
        end = time.time() + float(a[1])
        while time.time() < end:
            read_some(end)
        closing_label = None
        say(a[0], "(still open after %s s) %s" % (a[1], buf))
        buf = ""

print("[still open]", flush=True)
try:
    send("</stream:stream>")
except SystemExit:
    pass
sock.close()
