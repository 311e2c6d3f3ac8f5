#!/usr/bin/python3
# send-slixmpp.py — one chat message with slixmpp (Debian python3-slixmpp),
# connecting the way a slixmpp application does: connect() with no address,
# so slixmpp finds the server from the JID's domain (SRV _xmpp-client._tcp and
# AAAA through aiodns/c-ares, i.e. the resolver in /etc/resolv.conf).
#
#   /usr/bin/python3 send-slixmpp.py JID PASSWORD TO BODY [TIMEOUT]
#
# Two changes from a stock client: the test servers have self-signed
# certificates, so the SSL context does not verify them
# (ssl_context.check_hostname = False, verify_mode = CERT_NONE); and
# sasl_mech="PLAIN" (see Sender). Prints one JSON object per line
# ("online", "sent", "error-reply", "failed"); exits 0 once the message was
# sent and the server answered a ping after it, 1 otherwise.
import asyncio
import json
import ssl
import sys

import slixmpp


def out(**obj):
    print(json.dumps(obj), flush=True)


class Sender(slixmpp.ClientXMPP):
    def __init__(self, jid, password, to, body):
        # slixmpp 1.8.3 (Debian 12) and TLS 1.3 do not mix with SCRAM: it
        # picks SCRAM-SHA-1-PLUS with tls-unique channel binding, which TLS
        # 1.3 does not have (Prosody 13 refuses it), and plain
        # SCRAM-SHA-1 then claims "y" (client binds, server does not), which
        # Prosody, offering -PLUS, must refuse (malformed-request). PLAIN
        # inside the STARTTLS channel is what works.
        super().__init__(jid, password, sasl_mech="PLAIN")
        self.to = to
        self.body = body
        self.ok = False
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda _e: self.fail("authentication failed"))
        self.add_event_handler("connection_failed", lambda e: self.fail(f"connection failed: {e}"))
        self.add_event_handler("message_error", self.error_reply)

    def fail(self, reason):
        out(event="failed", reason=reason)
        self.disconnect()

    def error_reply(self, msg):
        out(event="error-reply", condition=msg["error"]["condition"], text=msg["error"]["text"])
        self.ok = False

    async def start(self, _event):
        out(event="online", jid=str(self.boundjid), server=self.address[0] if self.address else None)
        self.send_presence()
        self.send_message(mto=self.to, mbody=self.body, mtype="chat")
        out(event="sent", to=self.to, body=self.body)
        self.ok = True
        try:
            # A round trip to the own server: the message has been handled.
            await self["xep_0199"].ping(jid=self.boundjid.domain, timeout=10)
            await asyncio.sleep(0.3)
        except Exception as e:  # noqa: BLE001
            out(event="failed", reason=f"ping: {e}")
            self.ok = False
        self.disconnect()


def main():
    if len(sys.argv) < 5:
        print("usage: send-slixmpp.py JID PASSWORD TO BODY [TIMEOUT]", file=sys.stderr)
        return 1
    jid, password, to, body = sys.argv[1:5]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 30
    xmpp = Sender(jid, password, to, body)
    # Self-signed test certificates: do not verify them.
    xmpp.ssl_context.check_hostname = False
    xmpp.ssl_context.verify_mode = ssl.CERT_NONE
    xmpp.connect()  # no address: slixmpp resolves the JID's domain itself
    # (XMLStream.process(timeout=...) is deprecated, and broken on Python 3.11.)
    try:
        xmpp.loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, timeout))
    except asyncio.TimeoutError:
        out(event="failed", reason=f"timeout after {timeout:g} s")
        xmpp.ok = False
    if not xmpp.ok:
        out(event="failed", reason="not sent")
    return 0 if xmpp.ok else 1


if __name__ == "__main__":
    sys.exit(main())
