#!/usr/bin/env python3
# dnsprobe.py — raw DNS checks of the .v6.alt resolver (SPEC §6) for
# dns-resolver.sh: what dig cannot send or check (opcodes, question counts,
# responses, short messages, pipelined TCP, stalled clients) and the fuzzer.
# Standard library only. Run it inside a node (node_exec).
#
#   dnsprobe.py name ADDR [--reference]      the .v6.alt name of ADDR, from an
#                                            encoder independent of the module
#   dnsprobe.py arpa ADDR                    its ip6.arpa name
#   dnsprobe.py raw SERVER PORT              header rules over UDP and TCP
#   dnsprobe.py pipeline SERVER PORT         several queries on one TCP
#                                            connection, answered in order
#   dnsprobe.py stall SERVER PORT MODE HOLD  a stalled TCP client (MODE
#                                            partial: half a query; noread:
#                                            queries, never reads); prints when
#                                            the server closed it
#   dnsprobe.py cap SERVER PORT N            opens N idle TCP connections and
#                                            reports how many the server kept
#   dnsprobe.py fuzz SERVER PORT COUNT SEED [--tcp]
#                                            COUNT random and mutated messages
#   dnsprobe.py sweep SERVER PORT SEED [--tcp]  each class 0-65535 on a query
#   dnsprobe.py ask SERVER PORT NAME TYPE [--tcp]   one query; prints the rcode
#   dnsprobe.py conns SERVER PORT SOURCES PER KEPT ASK_SRC
#                                            PER idle connections from each
#                                            source: KEPT kept, the rest closed
#                                            at once; ASK_SRC answered meanwhile
#   dnsprobe.py noread SERVER PORT SOURCES PER READER_SRC HOLD READY_FILE
#                                            a reader, then PER clients from
#                                            each source that send queries and
#                                            never read; READY_FILE is written
#                                            once they have sent enough
#   dnsprobe.py trickle SERVER PORT SOURCES PER INTERVAL NEW_SRC
#                                            clients sending a byte of a query
#                                            every INTERVAL s; a new client
#                                            from NEW_SRC answered meanwhile
#   dnsprobe.py refused SERVER PORT SOURCES PER KEPT ALLOWED_SRC
#                                            connections from sources outside
#                                            the allow list (see refused_cmd)
#
# (SOURCES: comma-separated addresses of the node the probe runs in.)
#
# Checks print "ok - ..." or "not ok - ... (reason)" lines (the suite counts
# them); other lines start with "# ". Exit 0 unless the arguments are bad.
import base64
import ipaddress
import random
import select
import socket
import struct
import sys
import time

TIMEOUT = 2.0

# The largest record the resolver writes into a reply (the bound of SPEC §6:
# a reply is at most the query plus one record; an OPT record in the reply
# only stands for the query's own, which is at least as long):
#   SOA of v6.alt with its owner written out (ip6.arpa questions):
#     owner "\2v6\3alt\0" 8 + type/class/ttl/rdlength 10
#     + rdata: "\2ns"+pointer 5, "\12hostmaster"+pointer 13, 5 x 32 bits 20   = 56
#   PTR: pointer 2 + 10 + "\26<26 letters>\2v6\3alt\0" 35                      = 47
#   AAAA: 2 + 10 + 16 = 28; SRV: 2 + 10 + 6 + pointer 2 = 20; SOA with a compressed owner 50
LARGEST_RECORD = max(8 + 10 + 5 + 13 + 20, 2 + 10 + 35, 2 + 10 + 16, 2 + 10 + 8, 2 + 10 + 38)

T_A, T_NS, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA, T_SRV, T_OPT, T_ANY = 1, 2, 6, 12, 15, 16, 28, 33, 41, 255
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 16: "BADVERS"}


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def ok(desc):
    out("ok - " + desc)


def not_ok(desc, why):
    out("not ok - %s (%s)" % (desc, why))


def check(desc, cond, why=""):
    if cond:
        ok(desc)
    else:
        not_ok(desc, why or "failed")
    return cond


# ------------------------------------------------------------------ names


def v6alt_name(addr, reference=False):
    """SPEC §2, written from the text: base32, lowercase, the longest run of
    'a' (not touching either end, at least 2) becomes '-'; on a tie the first
    (canonical) or the last (reference implementation)."""
    s = base64.b32encode(ipaddress.IPv6Address(addr).packed).decode().rstrip("=").lower()
    runs = []
    i = 1
    while i < 25:
        if s[i] == "a":
            j = i
            while j < 25 and s[j] == "a":
                j += 1
            if j - i >= 2:
                runs.append((i, j))
            i = j
        else:
            i += 1
    if runs:
        longest = max(j - i for i, j in runs)
        best = [r for r in runs if r[1] - r[0] == longest]
        i, j = best[-1] if reference else best[0]
        s = s[:i] + "-" + s[j:]
    return s + ".v6.alt"


def arpa_name(addr):
    h = ipaddress.IPv6Address(addr).exploded.replace(":", "")
    return ".".join(reversed(h)) + ".ip6.arpa"


# ------------------------------------------------------------------ messages


def wire(name):
    outb = b""
    for label in name.strip(".").split("."):
        if label:
            b = label.encode()
            outb += bytes([len(b)]) + b
    return outb + b"\0"


def opt_record(version=0, do=False, options=b"", size=1232, ext_rcode=0):
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return b"\0" + struct.pack(">HHIH", T_OPT, size, ttl, len(options)) + options


COOKIE = struct.pack(">HH", 10, 8) + b"\x01\x02\x03\x04\x05\x06\x07\x08"


def query(name, qtype=T_AAAA, qclass=1, qid=0x1234, rd=True, opcode=0, qr=False, edns=None, qdcount=None,
          extra_questions=b""):
    flags = (0x8000 if qr else 0) | (opcode << 11) | (0x0100 if rd else 0)
    question = wire(name) + struct.pack(">HH", qtype, qclass) + extra_questions
    ar = b""
    arcount = 0
    if edns is not None:
        ar = edns
        arcount = 1
    qd = 1 if qdcount is None else qdcount
    return struct.pack(">HHHHHH", qid, flags, qd, 0, 0, arcount) + question + ar


class Reply:
    def __init__(self, data):
        self.data = data
        (self.id, self.flags, self.qd, self.an, self.ns, self.ar) = struct.unpack(">HHHHHH", data[:12])
        self.qr = bool(self.flags & 0x8000)
        self.opcode = (self.flags >> 11) & 15
        self.aa = bool(self.flags & 0x0400)
        self.tc = bool(self.flags & 0x0200)
        self.rd = bool(self.flags & 0x0100)
        self.ra = bool(self.flags & 0x0080)
        self.rcode = self.flags & 15
        pos = 12
        self.questions = []
        for _ in range(self.qd):
            name, pos2 = read_name(data, pos)
            self.questions.append((name, data[pos:pos2 + 4]))
            pos = pos2 + 4
        self.question_end = pos
        self.records = []  # (section, name, type, class, ttl, rdata offset, rdata)
        for section, count in (("an", self.an), ("ns", self.ns), ("ar", self.ar)):
            for _ in range(count):
                name, pos = read_name(data, pos)
                rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
                pos += 10
                if pos + rdlen > len(data):
                    raise ValueError("rdata runs past the end")
                self.records.append((section, name, rtype, rclass, ttl, pos, data[pos:pos + rdlen]))
                pos += rdlen
        if pos != len(data):
            raise ValueError("%d bytes after the last record" % (len(data) - pos))
        self.opt = [r for r in self.records if r[2] == T_OPT]
        if self.opt:
            self.rcode |= (self.opt[0][4] >> 24) << 4
            self.edns_version = (self.opt[0][4] >> 16) & 255

    def section(self, s):
        return [r for r in self.records if r[0] == s and r[2] != T_OPT]

    def rcode_name(self):
        return RCODES.get(self.rcode, str(self.rcode))


def read_name(data, pos):
    """The name at pos (decompressed) and the position after it; ValueError on
    loops, bad label types and names running past the end."""
    labels = []
    end = None
    jumps = 0
    while True:
        if pos >= len(data):
            raise ValueError("name runs past the end")
        n = data[pos]
        if n == 0:
            if end is None:
                end = pos + 1
            break
        if n >= 0xC0:
            if pos + 1 >= len(data):
                raise ValueError("pointer runs past the end")
            if end is None:
                end = pos + 2
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            continue
        if n > 63:
            raise ValueError("reserved label type")
        labels.append(data[pos + 1:pos + 1 + n])
        pos += 1 + n
    name = b".".join(labels).decode("latin-1")
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        raise ValueError("name longer than 255")
    return name, end


# ------------------------------------------------------------------ transport


def family(server):
    return socket.AF_INET6 if ":" in server else socket.AF_INET


def udp_exchange(server, port, msg, timeout=TIMEOUT):
    """The reply to msg over UDP, or None when none came: msg is followed by a
    marker query on the same socket, and the server answers in order, so a
    missing reply shows as the marker's coming first (no waiting for a timeout)."""
    marker = query("marker.invalid", T_A, qid=0xFEED)
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((server, port))
        s.send(msg)
        s.send(marker)
        data = s.recv(65535)
        if data[:2] == b"\xfe\xed" and data[12:len(marker)] == marker[12:]:
            return None
        return data
    except socket.timeout:
        return None
    finally:
        s.close()


def tcp_connect(server, port, timeout=TIMEOUT):
    s = socket.create_connection((server, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tcp_read_message(s):
    (n,) = struct.unpack(">H", recv_exact(s, 2))
    return recv_exact(s, n)


def framed(msg):
    return struct.pack(">H", len(msg)) + msg


def tcp_exchange(server, port, msg):
    """The reply to msg over TCP, or None when none is due: msg is followed by
    a marker query, so a missing reply shows as the marker's coming first."""
    marker = query("marker.invalid", T_A, qid=0xFEED)
    s = tcp_connect(server, port)
    try:
        s.sendall(framed(msg) + framed(marker))
        first = tcp_read_message(s)
        if first[:2] == b"\xfe\xed" and first[12:len(marker)] == marker[12:]:
            return None
        tcp_read_message(s)
        return first
    finally:
        s.close()


def exchange(server, port, msg, tcp):
    return tcp_exchange(server, port, msg) if tcp else udp_exchange(server, port, msg)


# ------------------------------------------------------------------ raw checks

CANONICAL = "fiabbgadu-e.v6.alt"  # 2a00:1098:3a0::1 (SPEC test vector)


def raw_checks(server, port):
    for tcp in (False, True):
        tp = "TCP" if tcp else "UDP"

        def ask(msg):
            data = exchange(server, port, msg, tcp)
            return None if data is None else Reply(data)

        for opcode in (1, 2, 4, 5, 6, 15):
            q = query(CANONICAL, opcode=opcode, qid=0x4000 + opcode)
            r = ask(q)
            check("%s: opcode %d -> NOTIMP, id and opcode echoed, RA clear" % (tp, opcode),
                  r is not None and r.qr and r.rcode == 4 and r.id == 0x4000 + opcode and r.opcode == opcode
                  and not r.ra and not r.aa,
                  "got %s" % describe(r))
        r = ask(query(CANONICAL, opcode=4, qid=0x4104, edns=opt_record()))
        check("%s: opcode 4 (NOTIFY) with EDNS -> NOTIMP with an OPT record" % tp,
              r is not None and r.rcode == 4 and len(r.opt) == 1 and r.edns_version == 0, "got %s" % describe(r))
        # Two questions, or none: FORMERR.
        two = query(CANONICAL, qdcount=2, extra_questions=wire("muc." + CANONICAL) + struct.pack(">HH", T_AAAA, 1))
        r = ask(two)
        check("%s: qdcount 2 -> FORMERR" % tp, r is not None and r.rcode == 1 and r.an == 0, "got %s" % describe(r))
        none = struct.pack(">HHHHHH", 0x2222, 0x0100, 0, 0, 0, 0)
        r = ask(none)
        check("%s: qdcount 0 -> FORMERR" % tp, r is not None and r.rcode == 1 and r.an == 0, "got %s" % describe(r))
        broken = struct.pack(">HHHHHH", 0x2223, 0x0100, 1, 0, 0, 0) + b"\x05abc"
        r = ask(broken)
        check("%s: a question that does not parse -> FORMERR" % tp, r is not None and r.rcode == 1, "got %s" % describe(r))
        # Responses and short messages: no reply.
        resp = query(CANONICAL, qr=True, qid=0x3333)
        check("%s: a response (QR set) gets no reply" % tp, ask(resp) is None)
        for n in (0, 1, 11) if not tcp else (1, 11):
            short = query(CANONICAL)[:n]
            check("%s: a %d-byte message gets no reply" % (tp, n), ask(short) is None)
        twelve = struct.pack(">HHHHHH", 0x2224, 0x0100, 0, 0, 0, 0)
        r = ask(twelve)
        check("%s: a 12-byte header alone is answered (FORMERR)" % tp, r is not None and r.rcode == 1, "got %s" % describe(r))
        # AA and RD.
        for rd in (True, False):
            for name, rcode in ((CANONICAL, 0), ("a-e.v6.alt", 3), ("example.com", 5)):
                r = ask(query(name, rd=rd))
                want_aa = rcode in (0, 3)
                check("%s: %s RD=%d -> %s, RD copied, AA %s, RA clear" % (tp, name, rd, RCODES[rcode], "set" if want_aa else "clear"),
                      r is not None and r.rcode == rcode and r.rd == rd and r.aa == want_aa and not r.ra,
                      "got %s" % describe(r))
        # The question, byte for byte, in random letter case.
        rng = random.Random(7)
        name = "".join(c.upper() if rng.random() < 0.5 else c for c in "muc." + CANONICAL)
        q = query(name)
        r = ask(q)
        qbytes = q[12:]
        check("%s: question %s echoed byte for byte, answer is the address" % (tp, name),
              r is not None and r.rcode == 0 and r.data[12:12 + len(qbytes)] == qbytes and r.an == 1
              and r.section("an")[0][6] == ipaddress.IPv6Address("2a00:1098:3a0::1").packed,
              "got %s" % describe(r))
        # EDNS(0): echoed without options; none when the query had none; version 1 -> BADVERS.
        r = ask(query(CANONICAL, edns=opt_record(options=COOKIE, do=True)))
        check("%s: EDNS query (with a cookie) -> one OPT, version 0, no options" % tp,
              r is not None and r.rcode == 0 and len(r.opt) == 1 and r.edns_version == 0 and r.opt[0][6] == b""
              and r.opt[0][1] == "", "got %s" % describe(r))
        r = ask(query(CANONICAL))
        check("%s: query without EDNS -> no OPT" % tp, r is not None and r.rcode == 0 and not r.opt and r.ar == 0,
              "got %s" % describe(r))
        r = ask(query(CANONICAL, edns=opt_record(version=1)))
        check("%s: EDNS version 1 -> BADVERS with OPT, question echoed, no answer" % tp,
              r is not None and r.rcode == 16 and len(r.opt) == 1 and r.edns_version == 0 and r.an == 0 and r.qd == 1,
              "got %s" % describe(r))
        # Bound: replies never outgrow the query by more than one record.
        worst = 0
        for q in (query(CANONICAL), query(arpa_name("2a00:1098:3a0::1"), T_PTR), query("5.ip6.arpa", T_TXT),
                  query("x.ip6.arpa", T_A), query("_xmpp-server._tcp." + CANONICAL, T_SRV),
                  query("a-e.v6.alt", T_AAAA, edns=opt_record())):
            r = ask(q)
            if r is not None:
                worst = max(worst, len(r.data) - len(q))
        check("%s: replies are at most the query plus %d bytes (largest seen: +%d)" % (tp, LARGEST_RECORD, worst),
              worst <= LARGEST_RECORD)


def describe(r):
    if r is None:
        return "no reply"
    return "rcode %s, flags %s, qd %d an %d ns %d ar %d" % (
        r.rcode_name(), " ".join(f for f, v in (("qr", r.qr), ("aa", r.aa), ("tc", r.tc), ("rd", r.rd), ("ra", r.ra)) if v),
        r.qd, r.an, r.ns, r.ar)


# ------------------------------------------------------------------ TCP pipelining and stalls


def pipeline(server, port):
    batch = [
        (query(CANONICAL, qid=1), 0),
        (query("_xmpp-client._tcp." + CANONICAL, T_SRV, qid=2), 0),
        (query(arpa_name("2a00:1098:3a0::1"), T_PTR, qid=3), 0),
        (query(CANONICAL, T_TXT, qid=4), 0),
        (query("a-e.v6.alt", qid=5), 3),
        (query("example.com", qid=6), 5),
        (query(CANONICAL, qr=True, qid=7), None),  # no reply
        (query("muc." + CANONICAL, qid=8, edns=opt_record()), 0),
    ]
    want = [(q[:2], rc) for q, rc in batch if rc is not None]
    s = tcp_connect(server, port)
    try:
        s.sendall(b"".join(framed(q) for q, _ in batch))
        got = [Reply(tcp_read_message(s)) for _ in want]
        check("TCP: %d queries in one write, answered in order on one connection" % len(batch),
              [(struct.pack(">H", r.id), r.rcode) for r in got] == want,
              "got ids/rcodes %s" % [(r.id, r.rcode) for r in got])
        # The same connection, then a query split into single bytes.
        msg = framed(query("upload." + CANONICAL, qid=9))
        for i in range(len(msg)):
            s.sendall(msg[i:i + 1])
            time.sleep(0.002)
        r = Reply(tcp_read_message(s))
        check("TCP: a query sent one byte at a time is answered", r.id == 9 and r.rcode == 0 and r.an == 1, describe(r))
        # Two queries in one segment with the second split across segments.
        a, b = framed(query(CANONICAL, qid=10)), framed(query(CANONICAL, T_MX, qid=11))
        s.sendall(a + b[:5])
        time.sleep(0.05)
        s.sendall(b[5:])
        r1, r2 = Reply(tcp_read_message(s)), Reply(tcp_read_message(s))
        check("TCP: queries across segment boundaries answered in order", (r1.id, r2.id) == (10, 11), "%d %d" % (r1.id, r2.id))
        # Many at once, from a client that reads slowly (a small receive
        # buffer): more replies than the server holds for one client, so it
        # stops reading for a while (RFC 7766 flow control); the client
        # writes and reads at the same time, as it must, and gets every
        # reply in order.
        n = 3000
        names = (CANONICAL, "example.com", "a-e.v6.alt", "_xmpp-server._tcp." + CANONICAL)
        s.close()
        s = socket.socket(family(server), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.settimeout(TIMEOUT)
        s.connect((server, port))
        s.setblocking(False)
        data = b"".join(framed(query(names[i % 4], T_SRV if i % 4 == 3 else T_AAAA, qid=i)) for i in range(n))
        inbuf = b""
        ids = []
        deadline = time.time() + 30
        while len(ids) < n and time.time() < deadline:
            r, w, _ = select.select([s], [s] if data else [], [], 1.0)
            if w:
                try:
                    data = data[s.send(data[:65536]):]
                except BlockingIOError:
                    pass
            if r:
                time.sleep(0.001)  # a slow reader
                chunk = s.recv(1024)
                if not chunk:
                    break
                inbuf += chunk
                while len(inbuf) >= 2 and len(inbuf) >= 2 + struct.unpack(">H", inbuf[:2])[0]:
                    size = struct.unpack(">H", inbuf[:2])[0]
                    ids.append(struct.unpack(">H", inbuf[2:4])[0])
                    inbuf = inbuf[2 + size:]
        check("TCP: %d queries from a slow reader (more than the server buffers), all answered in order" % n,
              ids == list(range(n)), "%d replies; first out of order at %s" % (len(ids), next((i for i, x in enumerate(ids) if x != i), None)))
    except (OSError, EOFError, ValueError) as e:
        not_ok("TCP pipelining", repr(e))
    finally:
        s.close()


def stall(server, port, mode, hold):
    """A client that stalls; prints 'closed after S s' (seconds since its
    last progress) when the server closes it, or 'still open after HOLD s'."""
    s = tcp_connect(server, port)
    s.setblocking(False)
    last = time.time()
    if mode == "partial":
        m = framed(query(CANONICAL))
        s.send(m[:7])
    else:  # noread: queries until the send buffer is full, never reading
        m = framed(query(CANONICAL)) * 64
        sent = 0
        while time.time() - last < 1.0:
            try:
                _, w, _ = select.select([], [s], [], 0.2)
                if w:
                    sent += s.send(m)
            except BlockingIOError:
                pass
            except OSError:
                break
        out("# noread: sent %d bytes" % sent)
        last = time.time()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    out("# stalled (%s)" % mode)
    start = last
    while time.time() - start < hold:
        try:
            if mode == "partial":
                r, _, _ = select.select([s], [], [], 0.2)
                if r:
                    data = s.recv(65536)
                    if not data:
                        out("closed after %.1f s" % (time.time() - last))
                        return
            else:
                # Never read; notice the close by writing (a reset) or by peeking.
                time.sleep(0.2)
                try:
                    data = s.recv(1, socket.MSG_PEEK)
                    if data == b"":
                        out("closed after %.1f s" % (time.time() - last))
                        return
                except BlockingIOError:
                    pass
                # A FIN that the unread data hides: SIOCINQ would show it; TCP_INFO state is simpler.
                state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
                if state in (8, 7, 11):  # CLOSE_WAIT, CLOSE, ... : the server closed its side
                    out("closed after %.1f s" % (time.time() - last))
                    return
        except (ConnectionResetError, BrokenPipeError):
            out("closed after %.1f s" % (time.time() - last))
            return
    out("still open after %d s" % hold)


def cap(server, port, n):
    socks = []
    for _ in range(n):
        try:
            socks.append(tcp_connect(server, port))
        except OSError:
            break
    time.sleep(1.0)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    out("opened %d kept %d closed %d" % (len(socks), len(socks) - closed, closed))
    for s in socks:
        s.close()


# ------------------------------------------------------------------ abusive TCP clients (issue 14)
#
# Each of these commands prints a plan line "1..N" first, then exactly N
# "ok"/"not ok" lines: the suite fails when fewer come (a crash midway).
# SOURCES are comma-separated addresses of the node to connect from.


def plan(n):
    out("1..%d" % n)


def tcp_state(s):
    """The kernel's TCP state of s (1: established; 7 close, 8 close-wait, ...)."""
    try:
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except OSError:
        return 7


def server_closed(s):
    """The server closed or reset s (without reading what it sent us)."""
    if tcp_state(s) != 1:
        return True
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def open_from(sources, per_source, server, port, rcvbuf=None):
    """per_source TCP connections from each source (non-blocking), all
    connected or failed within 3 s: [(sock, source)] of the connected ones."""
    socks = []
    for src in sources:
        for _ in range(per_source):
            s = socket.socket(family(server), socket.SOCK_STREAM)
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.bind((src, 0))
            s.setblocking(False)
            s.connect_ex((server, port))
            socks.append((s, src))
    poller = select.poll()
    for s, _ in socks:
        poller.register(s, select.POLLOUT)
    pending = {s.fileno() for s, _ in socks}
    t0 = time.time()
    while pending and time.time() - t0 < 3:
        for fd, _ in poller.poll(200):
            pending.discard(fd)
            poller.unregister(fd)
    good = []
    for s, src in socks:
        if s.fileno() not in pending and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            good.append((s, src))
        else:
            s.close()
    return good


def ask_on(s, name, qid, timeout=2.0):
    """One AAAA query on a connected blocking socket: (Reply or None, seconds).
    Late replies to earlier queries (that timed out) are skipped."""
    t0 = time.time()
    try:
        s.settimeout(timeout)
        s.sendall(framed(query(name, qid=qid)))
        while time.time() - t0 < timeout:
            r = Reply(tcp_read_message(s))
            if r.id == qid:
                return r, time.time() - t0
        return None, time.time() - t0
    except (OSError, EOFError, ValueError, struct.error):
        return None, time.time() - t0


def ask_from(src, server, port, name=CANONICAL, timeout=2.0):
    """A new connection from src, one query: (Reply or None, seconds from connect to reply)."""
    t0 = time.time()
    s = socket.socket(family(server), socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((server, port))
        r, _ = ask_on(s, name, 0x5151, timeout)
        return r, time.time() - t0
    except OSError:
        return None, time.time() - t0
    finally:
        s.close()


def answered(r):
    return r is not None and r.rcode == 0 and r.an == 1


def count_closed(conns, wait=1.0):
    time.sleep(wait)
    return sum(1 for s, _ in conns if server_closed(s))


def conns_cmd(server, port, sources, per_source, want_kept, ask_src):
    """per_source idle connections from each source; the server keeps
    want_kept and closes the rest at once; meanwhile a new connection from
    ask_src is answered (ask_src "-": no such check)."""
    plan(3 if ask_src != "-" else 2)
    conns = open_from(sources, per_source, server, port)
    n = len(sources) * per_source
    closed = count_closed(conns)
    check("%d TCP connections from %d sources opened (%d each)" % (n, len(sources), per_source), len(conns) == n,
          "%d connected" % len(conns))
    kept = len(conns) - closed
    by = {}
    for s, src in conns:
        if not server_closed(s):
            by[src] = by.get(src, 0) + 1
    check("the server keeps %d of them and closes %d at once (kept %d, closed %d; most from one source: %d)"
          % (want_kept, n - want_kept, kept, closed, max(by.values()) if by else 0),
          kept == want_kept and closed == n - want_kept, "kept %d, closed %d" % (kept, closed))
    if ask_src != "-":
        r, dt = ask_from(ask_src, server, port)
        check("meanwhile a client from %s is answered (%.2f s)" % (ask_src, dt), answered(r) and dt < 2, describe(r))
    for s, _ in conns:
        s.close()


def peeked(s):
    """The server has sent s something (looked at, not read: it stays unread)."""
    try:
        return len(s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)) > 0
    except OSError:
        return False


def noread_cmd(server, port, sources, per_source, reader_src, hold, ready_file):
    """A reader connects first, then per_source clients from each source
    send queries (up to LIMIT bytes each, many times what the server may
    leave unread) and never read. Once the server has answered each of them
    (seen by peeking) they hold for `hold` seconds: ready_file is written
    (the suite measures the server's memory then) and the reader asks every
    0.2 s, on until the non-readers are closed by the idle timeout."""
    plan(6)
    limit = 256 * 1024
    reader = socket.socket(family(server), socket.SOCK_STREAM)
    reader.bind((reader_src, 0))
    reader.settimeout(2)
    reader.connect((server, port))
    n = len(sources) * per_source
    conns = open_from(sources, per_source, server, port, rcvbuf=4096)
    payload = framed(query(CANONICAL)) * 256
    sent = {s.fileno(): 0 for s, _ in conns}
    gone = {}
    stats = {"latencies": [], "lost": 0, "qid": 0, "next": 0.0, "checked": 0.0}

    def pump():
        """One round: every non-reader sends what it may; the reader asks when due.
        (Light on the CPU: the server under test shares it.)"""
        now = time.time()
        check_closed = now - stats["checked"] >= 0.25
        if check_closed:
            stats["checked"] = now
        for s, _ in conns:
            fd = s.fileno()
            if fd in gone:
                continue
            if check_closed and server_closed(s):
                gone[fd] = now
                continue
            if sent[fd] >= limit:
                continue
            try:
                k = s.send(payload[:limit - sent[fd]])
                if k > 0:
                    sent[fd] += k
            except BlockingIOError:
                pass
            except OSError:
                gone[fd] = now
        if now >= stats["next"]:
            stats["qid"] += 1
            r, dt = ask_on(reader, CANONICAL, stats["qid"], 5.0)
            if answered(r):
                stats["latencies"].append(dt)
            else:
                stats["lost"] += 1
            stats["next"] = time.time() + 0.2
        time.sleep(0.02)

    # Until the server has answered each (or closed it): it took them all in.
    t0 = time.time()
    answered_at = {}
    while time.time() - t0 < 20 and len(answered_at) + len(gone) < len(conns):
        pump()
        for s, _ in conns:
            if s.fileno() not in answered_at and s.fileno() not in gone and peeked(s):
                answered_at[s.fileno()] = time.time()
    burst = time.time() - t0
    burst_slowest = max(stats["latencies"]) if stats["latencies"] else 0
    burst_lost = stats["lost"]
    stats["latencies"] = []
    stats["lost"] = 0
    # Held now: answered by the server and not closed. (Those answered first
    # may reach the idle timeout during the hold when the server was slow.)
    kept = [(s, src) for s, src in conns if s.fileno() not in gone and not server_closed(s)]
    t1 = time.time()
    with open(ready_file, "w") as f:
        f.write("ready\n")
    while time.time() - t1 < hold:
        pump()
    amounts = sorted(sent[s.fileno()] for s, _ in kept)
    check("%d non-reading clients from %d sources connected; %d hold a slot beside the reader (the cap is 100), "
          "each answered by the server within %.1f s (the reader meanwhile: %d lost, slowest %.0f ms)"
          % (n, len(sources), len(kept), burst, burst_lost, 1000 * burst_slowest),
          len(conns) == n and len(kept) == n - 1 and all(s.fileno() in answered_at for s, _ in kept),
          "%d connected, %d kept" % (len(conns), len(kept)))
    # 128 KiB of queries: about 14 times the 16 KiB of replies the server may leave unread.
    check("each of them sent at least 128 KiB of queries (up to %d KiB) and never read (least %.0f KiB, %.1f MiB in all)"
          % (limit // 1024, amounts[0] / 1024 if amounts else 0, sum(sent.values()) / 1048576),
          bool(amounts) and amounts[0] >= 128 * 1024, "least %s" % (amounts[0] if amounts else None))
    lat = sorted(stats["latencies"])
    check("the reader got every answer while they held (%d queries over %.0f s, median %.0f ms, slowest %.0f ms)"
          % (len(lat) + stats["lost"], hold, 1000 * lat[len(lat) // 2] if lat else 0, 1000 * lat[-1] if lat else 0),
          stats["lost"] == 0 and len(lat) >= 2, "%d lost" % stats["lost"])
    # Then the idle timeout: no whole query answered and no write progress.
    stats["latencies"] = []
    t2 = time.time()
    while time.time() - t2 < 16 and any(s.fileno() not in gone for s, _ in kept):
        pump()
    idle = [gone[s.fileno()] - answered_at[s.fileno()] for s, _ in kept if s.fileno() in gone and s.fileno() in answered_at]
    still = sum(1 for s, _ in kept if s.fileno() not in gone)
    check("the non-readers are then closed by the idle timeout (%d still open; closed %.1f-%.1f s after their first answer)"
          % (still, min(idle) if idle else 0, max(idle) if idle else 0), still == 0)
    check("the reader got every answer meanwhile too (%d lost)" % stats["lost"], stats["lost"] == 0)
    r, _ = ask_on(reader, CANONICAL, 0x7777, 5.0)
    check("the reader is still answered afterwards", answered(r), describe(r))
    reader.close()
    for s, _ in conns:
        s.close()


def trickle_cmd(server, port, sources, per_source, interval, new_src):
    """per_source clients from each source send one byte of a query every
    interval seconds; the server keeps at most its per-source limit of them
    and closes those it kept once the query deadline passes; a new client
    is answered meanwhile."""
    plan(4)
    n = len(sources) * per_source
    conns = open_from(sources, per_source, server, port)
    msg = framed(query(CANONICAL))
    pos = {}
    first = {}
    closed_at = {}
    t0 = time.time()
    for s, _ in conns:
        try:
            s.send(msg[:1])
            pos[s.fileno()] = 1
            first[s.fileno()] = time.time()
        except OSError:
            closed_at[s.fileno()] = time.time()
    time.sleep(0.5)
    kept = [(s, src) for s, src in conns if not server_closed(s)]
    check("%d trickling clients from %d sources connected and sent their first byte; the server keeps %d"
          % (n, len(sources), len(kept)),
          len(conns) == n and len(pos) == n and len(kept) == min(n, len(sources) * 10), "%d connected, %d kept" % (len(conns), len(kept)))
    r, dt = ask_from(new_src, server, port)
    check("a new client from %s is answered in %.2f s while they trickle (within 2 s)" % (new_src, dt),
          answered(r) and dt < 2, describe(r))
    next_byte = time.time() + interval
    while time.time() - t0 < 12 and len(closed_at) < len(kept):
        now = time.time()
        for s, _ in kept:
            fd = s.fileno()
            if fd in closed_at:
                continue
            if server_closed(s):
                closed_at[fd] = now
        if now >= next_byte:
            for s, _ in kept:
                fd = s.fileno()
                if fd not in closed_at and pos[fd] < len(msg) - 1:
                    try:
                        s.send(msg[pos[fd]:pos[fd] + 1])
                        pos[fd] += 1
                    except OSError:
                        closed_at[fd] = now
            next_byte = now + interval
        time.sleep(0.05)
    ages = [closed_at[s.fileno()] - first[s.fileno()] for s, _ in kept if s.fileno() in closed_at]
    sent = [pos[s.fileno()] for s, _ in kept]
    check("each kept trickler sent a byte every %g s and never a whole query (%d-%d of %d bytes)"
          % (interval, min(sent) if sent else 0, max(sent) if sent else 0, len(msg)),
          bool(sent) and min(sent) >= 4 and max(sent) < len(msg))
    check("each is closed 4.5-7 s after its first byte: the query deadline (%d of %d closed, %.1f-%.1f s)"
          % (len(ages), len(kept), min(ages) if ages else 0, max(ages) if ages else 0),
          len(ages) == len(kept) and bool(ages) and min(ages) >= 4.5 and max(ages) <= 7)
    for s, _ in conns:
        s.close()


def refused_cmd(server, port, sources, per_source, want_kept, allowed_src):
    """Connections from sources outside the allow list: the server holds
    want_kept of them (apart from the allowed clients' slots) and closes the
    rest at once; an allowed client is answered meanwhile; those that ask get
    REFUSED and then the end of the connection; the silent ones are closed
    when the query deadline passes."""
    plan(5)
    n = len(sources) * per_source
    conns = open_from(sources, per_source, server, port)
    t0 = time.time()
    closed = count_closed(conns, 0.5)
    kept = [(s, src) for s, src in conns if not server_closed(s)]
    check("%d connections from %d sources outside the allow list: the server holds %d, closes %d at once"
          % (n, len(sources), len(kept), closed),
          len(conns) == n and len(kept) == want_kept and closed == n - want_kept, "%d connected" % len(conns))
    r, dt = ask_from(allowed_src, server, port)
    check("an allowed client is answered while they are held (%.2f s)" % dt, answered(r) and dt < 2, describe(r))
    asking, silent = kept[0::2], kept[1::2]
    good = 0
    why = ""
    for i, (s, _) in enumerate(asking):
        s.setblocking(True)
        s.settimeout(2)
        try:
            s.sendall(framed(query(CANONICAL, qid=i)) + framed(query(CANONICAL, qid=1000 + i)))
            rr = Reply(tcp_read_message(s))
            rest = s.recv(1)
            if rr.id == i and rr.rcode == 5 and rest == b"":
                good += 1
            else:
                why = "id %d %s then %r" % (rr.id, rr.rcode_name(), rest)
        except (OSError, EOFError, ValueError) as e:
            why = repr(e)
    check("each of the %d that ask gets REFUSED for its first query and then EOF (two sent)" % len(asking),
          good == len(asking) and good > 0, "%d good; %s" % (good, why))
    ends = {}
    while time.time() - t0 < 9 and len(ends) < len(silent):
        for s, _ in silent:
            if s.fileno() not in ends and server_closed(s):
                ends[s.fileno()] = time.time() - t0
        time.sleep(0.05)
    ages = list(ends.values())
    check("each of the %d silent ones is closed 4.5-7 s after it connected (%d closed, %.1f-%.1f s)"
          % (len(silent), len(ages), min(ages) if ages else 0, max(ages) if ages else 0),
          len(ages) == len(silent) and bool(ages) and min(ages) >= 4.5 and max(ages) <= 7)
    r, dt = ask_from(allowed_src, server, port)
    check("an allowed client is answered afterwards (%.2f s)" % dt, answered(r), describe(r))
    for s, _ in conns:
        s.close()


def ask_cmd(server, port, name, qtype, tcp):
    types = {"A": T_A, "AAAA": T_AAAA, "SRV": T_SRV, "PTR": T_PTR, "TXT": T_TXT}
    data = exchange(server, port, query(name, types[qtype]), tcp)
    out(Reply(data).rcode_name() if data is not None else "no reply")


# ------------------------------------------------------------------ fuzzing


def seeds():
    names = [CANONICAL, "muc." + CANONICAL, "MuC.FiAbBgAdU-E.V6.aLt", "eaaq3oaaaaaaaaab-e.v6.alt",
             "aiamvog6wthgaq3cisjokoiewu.v6.alt", "a-e.v6.alt", "v6.alt", "example.com", "zz.v6.alt",
             arpa_name("2a00:1098:3a0::1"), arpa_name("::1"), "a.b.ip6.arpa", ".".join(["x" * 63] * 3) + ".v6.alt",
             "_xmpp-client._tcp." + CANONICAL, "_xmpp-server._tcp." + CANONICAL, ""]
    out_ = []
    for name in names:
        for qtype in (T_AAAA, T_SRV, T_PTR, T_A, T_TXT, T_ANY, T_SOA):
            out_.append(query(name, qtype))
        out_.append(query(name, T_AAAA, edns=opt_record(options=COOKIE)))
        out_.append(query(name, T_AAAA, edns=opt_record(version=1)))
    # Records in every section, some of them OPT, some compressed.
    rec = b"\xc0\x0c" + struct.pack(">HHIH", T_AAAA, 1, 60, 16) + b"\x20" * 16
    m = bytearray(query(CANONICAL))
    m[6:12] = struct.pack(">HHH", 1, 1, 1)
    out_.append(bytes(m) + rec + rec + opt_record())
    m2 = bytearray(query(CANONICAL))
    m2[10:12] = struct.pack(">H", 2)
    out_.append(bytes(m2) + opt_record() + opt_record())
    return out_


def mutate(rng, msg):
    m = bytearray(msg)
    kind = rng.randrange(12)
    if kind == 0 and m:  # truncate
        del m[rng.randrange(len(m)):]
    elif kind == 1 and m:  # flip bits
        for _ in range(rng.randint(1, 8)):
            m[rng.randrange(len(m))] ^= 1 << rng.randrange(8)
    elif kind == 2 and m:  # random bytes
        for _ in range(rng.randint(1, 6)):
            m[rng.randrange(len(m))] = rng.randrange(256)
    elif kind == 3 and len(m) >= 12:  # huge or odd counts
        i = rng.choice((4, 6, 8, 10))
        m[i:i + 2] = struct.pack(">H", rng.choice((0, 1, 2, 0x7FFF, 0xFFFF, rng.randrange(65536))))
    elif kind == 4 and len(m) > 13:  # compression pointers: to itself, to the header, forward, loops
        i = rng.randrange(12, len(m) - 1)
        target = rng.choice((i, 12, 0, i - 2 if i > 13 else 12, len(m) - 2, rng.randrange(len(m))))
        m[i:i + 2] = struct.pack(">H", 0xC000 | (target & 0x3FFF))
    elif kind == 5 and len(m) > 12:  # reserved label types and long labels
        m[12] = rng.choice((64, 65, 127, 128, 191, 63, 255))
    elif kind == 6:  # garbage appended
        m += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == 7:  # records appended: OPTs (big rdlength, several), pointer loops
        for _ in range(rng.randint(1, 4)):
            r = rng.randrange(3)
            if r == 0:
                m += opt_record(version=rng.randrange(256), options=bytes(rng.randrange(256) for _ in range(rng.randrange(8))))
            elif r == 1:
                m += b"\0" + struct.pack(">HHIH", T_OPT, 512, 0, rng.choice((0xFFFF, 100, 4)))
            else:
                here = len(m)
                m += struct.pack(">H", 0xC000 | here) + struct.pack(">HHIH", 1, 1, 0, 0)
        if len(m) >= 12:
            m[10:12] = struct.pack(">H", rng.randint(1, 6))
    elif kind == 8 and len(m) >= 4:  # flags: QR, opcode, every bit
        m[2] = rng.randrange(256)
        m[3] = rng.randrange(256)
    elif kind == 9:  # the message twice
        m += bytes(m)
    elif kind == 10:  # a long name: many labels
        name = ".".join("a" * rng.randint(1, 63) for _ in range(rng.randint(2, 12))) + ".v6.alt"
        try:
            m = bytearray(query(name, rng.randrange(65536)))
        except ValueError:
            pass
    else:  # random type and class
        if len(m) >= 16:
            m[-4:] = struct.pack(">HH", rng.randrange(65536), rng.choice((1, 3, 4, 254, 255, rng.randrange(65536))))
    return bytes(m)


def fuzz_message(rng, base, i):
    r = rng.random()
    if r < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
    if r < 0.09:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(512, 4000)))
    m = bytearray(rng.choice(base))
    # Other classes (the sweep tries each one) and every opcode.
    if rng.random() < 0.3:
        qend = 12 + len(wire_skip(m))
        if qend + 4 <= len(m):
            m[qend + 2:qend + 4] = struct.pack(">H", rng.choice((0, 3, 4, 254, 255, rng.randrange(65536))))
    if rng.random() < 0.3:
        m[2] = (m[2] & 0x87) | ((i % 16) << 3)
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        m = bytearray(mutate(rng, bytes(m)))
    return bytes(m[:65000])


def wire_skip(m):
    """The question name's bytes of a seed query (seeds are well formed)."""
    pos = 12
    while pos < len(m) and m[pos] != 0:
        pos += 1 + m[pos]
    return m[12:pos + 1]


def verdict(q, data, allowed=True):
    """None if the reply (or its absence) is right for query q, else why not."""
    due = len(q) >= 12 and not (q[2] & 0x80)
    if data is None:
        return "no reply" if due else None
    if not due:
        return "a reply to a message that needs none"
    if len(data) > len(q) + LARGEST_RECORD:
        return "reply of %d bytes to a query of %d (bound %d)" % (len(data), len(q), len(q) + LARGEST_RECORD)
    try:
        r = Reply(data)
    except (ValueError, struct.error) as e:
        return "malformed reply: %s" % e
    if not r.qr or r.id != struct.unpack(">H", q[:2])[0] or r.ra:
        return "bad header: %s" % describe(r)
    if r.opcode != (q[2] >> 3) & 15:
        return "opcode not echoed"
    if r.rcode not in (0, 1, 3, 4, 5, 16) or (not allowed and r.rcode not in (1, 4, 5)):
        return "rcode %s" % r.rcode_name()
    if r.an + r.ns > 1:
        return "more than one record"
    return None


def sweep_message(rng, i):
    """Class i (0-65535) on an ordinary query: only IN is served."""
    name = rng.choice((CANONICAL, "muc." + CANONICAL, "a-e.v6.alt", "example.com", arpa_name("2a00:1098:3a0::1")))
    return query(name, rng.choice((T_AAAA, T_SRV, T_PTR, T_TXT)), qclass=i, qid=rng.randrange(65536),
                 edns=opt_record() if rng.random() < 0.5 else None)


def fuzz(server, port, count, seed, tcp, sweep=False):
    rng = random.Random(seed)
    base = seeds()
    bad = []
    replies = 0
    rcodes = {}
    silent = 0
    lost = 0
    t0 = time.time()
    window = 64 if not tcp else 16
    s = None
    if tcp:
        s = tcp_connect(server, port, timeout=5)
    else:
        s = socket.socket(family(server), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect((server, port))
        s.settimeout(2.0)
    sent = 0
    while sent < count:
        # Each message is followed by a marker query with a known id and name:
        # replies come back in order, so whatever comes before a marker's
        # reply answers the message before it.
        batch = []
        while sent < count and len(batch) < window:
            q = sweep_message(rng, sent) if sweep else fuzz_message(rng, base, sent)
            marker = query("m%d.marker.invalid" % sent, T_A, qid=sent & 0xFFFF)
            batch.append((q, marker))
            sent += 1
        payload = []
        for q, marker in batch:
            if tcp:
                if len(q) > 65535:
                    q = q[:65535]
                payload.append(framed(q) + framed(marker))
            else:
                s.send(q)
                s.send(marker)
        if tcp:
            s.sendall(b"".join(payload))
        for q, marker in batch:
            got = []
            while True:
                try:
                    data = tcp_read_message(s) if tcp else s.recv(65535)
                except (socket.timeout, EOFError, OSError):
                    data = None
                if data is None:
                    lost += 1
                    break
                if data[:2] == marker[:2] and len(data) >= len(marker) and data[12:len(marker)] == marker[12:]:
                    break
                got.append(data)
            if len(got) > 1:
                bad.append((q, "%d replies" % len(got)))
                continue
            reply = got[0] if got else None
            if reply is None:
                silent += 1
            else:
                replies += 1
                try:
                    name = Reply(reply).rcode_name()
                except (ValueError, struct.error):
                    name = "unparsable"
                rcodes[name] = rcodes.get(name, 0) + 1
            why = verdict(q, reply)
            if why is None and sweep and reply is not None:
                qclass = struct.unpack(">H", q[len(q) - 4 - (11 if q[11] else 0) + 2:][:2])[0]
                if qclass != 1 and Reply(reply).rcode != 5:
                    why = "class %d answered %s, not REFUSED" % (qclass, Reply(reply).rcode_name())
            if why is not None:
                bad.append((q, why))
        if lost > 20:
            break
    s.close()
    tp = "TCP" if tcp else "UDP"
    out("# %s %s: %d messages in %.1f s, %d replies, %d without reply, %d markers lost, %d bad"
        % ("sweep" if sweep else "fuzz", tp, sent, time.time() - t0, replies, silent, lost, len(bad)))
    out("#   rcodes: %s" % ", ".join("%s %d" % kv for kv in sorted(rcodes.items())))
    for q, why in bad[:5]:
        out("#   %s: query %s" % (why, q.hex()))
    what = "every class 0-65535 on a query" if sweep else "%d random and mutated messages (seed %d)" % (sent, seed)
    if sweep and sent < 65536:
        bad.append((b"", "only %d classes" % sent))
    check("%s %s: %s: every reply well formed, in bounds (query + %d), none where none is due"
          % ("sweep" if sweep else "fuzz", tp, what, LARGEST_RECORD), not bad and lost == 0,
          "%d bad, %d markers lost" % (len(bad), lost))


# ------------------------------------------------------------------ main


def main(argv):
    if not argv:
        sys.stderr.write("usage: see the top of dnsprobe.py\n")
        return 1
    cmd, args = argv[0], argv[1:]
    tcp = "--tcp" in args
    args = [a for a in args if a != "--tcp"]
    if cmd == "name":
        out(v6alt_name(args[0], reference="--reference" in args))
    elif cmd == "arpa":
        out(arpa_name(args[0]))
    elif cmd == "raw":
        raw_checks(args[0], int(args[1]))
    elif cmd == "pipeline":
        pipeline(args[0], int(args[1]))
    elif cmd == "stall":
        stall(args[0], int(args[1]), args[2], float(args[3]))
    elif cmd == "cap":
        cap(args[0], int(args[1]), int(args[2]))
    elif cmd == "fuzz":
        fuzz(args[0], int(args[1]), int(args[2]), int(args[3]), tcp)
    elif cmd == "sweep":
        fuzz(args[0], int(args[1]), 65536, int(args[2]), tcp, sweep=True)
    elif cmd == "conns":
        conns_cmd(args[0], int(args[1]), args[2].split(","), int(args[3]), int(args[4]), args[5])
    elif cmd == "noread":
        noread_cmd(args[0], int(args[1]), args[2].split(","), int(args[3]), args[4], float(args[5]), args[6])
    elif cmd == "trickle":
        trickle_cmd(args[0], int(args[1]), args[2].split(","), int(args[3]), float(args[4]), args[5])
    elif cmd == "refused":
        refused_cmd(args[0], int(args[1]), args[2].split(","), int(args[3]), int(args[4]), args[5])
    elif cmd == "ask":
        ask_cmd(args[0], int(args[1]), args[2], args[3], tcp)
    else:
        sys.stderr.write("dnsprobe.py: unknown command %s\n" % cmd)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
