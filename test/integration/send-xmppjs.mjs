#!/usr/bin/env node
// send-xmppjs.mjs — one chat message with @xmpp/client, given only the JID's
// domain: `service` is the bare domain, so @xmpp/resolve finds the server
// (SRV _xmpps-client/_xmpp-client._tcp and the domain's addresses through
// Node's resolvers, which read /etc/resolv.conf; also host-meta over HTTPS).
//
//   node send-xmppjs.mjs JID PASSWORD TO BODY [TIMEOUT_S]
//
// The test servers have self-signed certificates:
// NODE_TLS_REJECT_UNAUTHORIZED=0 lets STARTTLS accept them. One JSON object
// per stdout line ("status", "online", "sent", "error-reply", "failed");
// exits 0 once the message was sent and the server answered a ping after
// it, 1 otherwise.
import { client, xml } from "@xmpp/client";
import "./xmpp-test-setup.mjs";

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const [jidText, password, to, body, timeoutText] = process.argv.slice(2);
if (!body) {
  process.stderr.write("usage: send-xmppjs.mjs JID PASSWORD TO BODY [TIMEOUT_S]\n");
  process.exit(1);
}
const [username, domain] = jidText.split("@");
const timer = setTimeout(() => {
  out({ event: "failed", reason: "timeout" });
  process.exit(1);
}, (Number(timeoutText) || 30) * 1000);

// No URI: the service is the domain, resolved by @xmpp/resolve.
const xmpp = client({ service: domain, domain, username, password });
let failed = false;
xmpp.on("status", (status, value) => {
  if (status === "connecting") out({ event: "status", status, value: String(value ?? "") });
});
xmpp.on("error", (err) => {
  out({ event: "failed", reason: String(err?.message || err) });
  failed = true;
});
xmpp.on("stanza", (stanza) => {
  if (stanza.is("message") && stanza.attrs.type === "error") {
    const error = stanza.getChild("error");
    const condition = error?.children.find((c) => c.name !== "text")?.name;
    out({ event: "error-reply", from: stanza.attrs.from, condition });
    failed = true;
  }
});
xmpp.on("online", async (address) => {
  out({ event: "online", jid: address.toString() });
  try {
    await xmpp.send(xml("presence"));
    await xmpp.send(xml("message", { type: "chat", to }, xml("body", {}, body)));
    out({ event: "sent", to, body });
    // A round trip to the own server: the message has been handled.
    await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", "urn:xmpp:ping")), 10000);
    await new Promise((r) => setTimeout(r, 300));
  } catch (err) {
    out({ event: "failed", reason: String(err?.message || err) });
    failed = true;
  }
  await xmpp.stop().catch(() => {});
  clearTimeout(timer);
  process.exit(failed ? 1 : 0);
});
xmpp.start().catch((err) => {
  out({ event: "failed", reason: `start: ${err?.message || err}` });
  clearTimeout(timer);
  process.exit(1);
});
