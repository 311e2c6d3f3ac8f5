#!/usr/bin/env node
// Minimal XMPP test client for the integration tests (uses @xmpp/client).
//
// Every line on stdout is one JSON object with an "event" field, so the shell
// side can grep it. Diagnostics go to stderr.
//
//   node client.mjs recv --service xmpp://[fd00::1]:5222 --domain D --user U --pass P \
//        [--count N] [--timeout S] [--resource R]
//     Connects, sends initial presence, prints {"event":"online"}, then one
//     {"event":"message",...} per received message with a body. Exits 0 once N
//     chat/normal messages arrived, 2 on timeout.
//
//   node client.mjs send --service ... --domain D --user U --pass P --to JID --body TEXT \
//        [--count N] [--type chat] [--expect-error] [--timeout S] [--linger-ms MS]
//     Sends N messages (body "TEXT" if N=1, else "TEXT 1".."TEXT N").
//     Without --expect-error: exits 0 after the server acknowledged them (a ping
//     round trip to the own server), or 4 if an error message came back meanwhile
//     or during --linger-ms.
//     With --expect-error: waits (up to --timeout) for a type="error" message from
//     the destination, prints {"event":"error-reply","condition":...,"text":...,
//     "elapsed_ms":...}, exits 0; exits 3 if none came, 5 if a non-error reply came.
//
//   node client.mjs ping --service ... --domain D --user U --pass P --to JID [--timeout S]
//     XEP-0199 ping to JID (e.g. a remote server domain); prints
//     {"event":"pong"|"ping-error",...,"elapsed_ms":...}; exits 0 on pong, 6 on error.
//
//   node client.mjs muc --service ... --domain D --user U --pass P --room ROOM@SERVICE/NICK \
//        [--say TEXT [--say-when NICK]] [--invite JID[,JID...]] [--decline JID[,JID...]]
//        [--history N] [--stay S]
//     Joins the room (XEP-0045: presence with <x xmlns='http://jabber.org/protocol/muc'>,
//     <history maxstanzas=N/>, default 0: only live messages). A room it creates (status
//     201) is made an instant room at once, so others can join. Prints
//     {"event":"muc-presence","from":...,"type":...,"codes":[...],"condition":...}
//     for every presence from the room, {"event":"joined","from":...} once its own
//     presence (status 110) came back, then sends --say (one groupchat message,
//     {"event":"said"}; with --say-when, only once NICK is in the room too),
//     --invite (one mediated invite per JID, XEP-0045 §7.8.2; {"event":"invited",
//     "to":...}) and --decline (one mediated decline per JID; {"event":"declined",
//     "to":...}). Every groupchat message with a body prints {"event":"groupchat",
//     "from":...,"body":...}; error messages print "error-reply", other messages
//     "message". Runs --stay seconds once online (default 10; --timeout is
//     ignored), then prints {"event":"done"} and exits 0 (1 on a connection failure).
//
//   node client.mjs spray --service ... --domain D --user U --pass P --to-file FILE
//        [--settle S] [--timeout S]
//     Sends initial presence, then one chat per line of FILE ("ID JID [wait]"):
//     id ID, body "spray ID", to JID (sent as given: no JID parsing on this
//     side), printing {"event":"sent","id":...,"to":...} for each. Prints every
//     error stanza ("error-reply", with its id) and every message with a body
//     ("message", with its id: a chat this client sent to itself comes back so).
//     Once every line marked "wait" has had its answer (an error or a message
//     with its id), waits --settle seconds more (default 2) for late replies and
//     prints {"event":"done","sent":N,"answered":K,"missing":[IDs]} (exit 0);
//     at --timeout (default 20) the same with exit 2 if some "wait" id is missing.
//
//   node client.mjs burst --service ... --domain D --user U --pass P --to JID --count N --rate R
//        [--tag T] [--settle S] [--timeout S]
//     (Any command takes --no-sm: do not enable XEP-0198 stream management on
//     the client's own stream even if the server offers it.)
//     Sends N chats at a steady R per second (chat i goes out at start + (i-1)/R s),
//     each with id "T-i" and body "T i" (T defaults to "burst<pid>"); prints
//     {"event":"start","tag":T,"count":N,"rate":R,"t0":EPOCH_MS} once online, {"event":"sent","id":...}
//     per chat (with "ms" since the start), {"event":"error-reply","id":...,
//     "condition":...,"text":...} per error stanza that comes back (at any time,
//     also during the settle time), then pings its own server, waits --settle seconds
//     (default 10) for late error replies and prints {"event":"done","sent":N,
//     "errors":K,"elapsed_ms":...}; exits 0 (1 if the connection to its own server
//     failed). --timeout (default 600) is a backstop for the whole run. The body and
//     the id let the receiver (recv, which prints every message) and the error
//     replies be matched to each chat.
//
// --timeout (and muc's --stay) count from the moment the client is online;
// getting online has its own limit, --connect-timeout S (default 60: exit 1,
// {"event":"connect-timeout"}).
//
// Exit codes: 0 ok (muc: after --stay), 1 usage/connection failure, 2 recv timeout,
// 3 no expected error, 4 unexpected error reply, 5 unexpected non-error reply, 6 ping error.

import { client, xml } from "@xmpp/client";
import "./xmpp-test-setup.mjs";

const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function usage(msg) {
  process.stderr.write(`client.mjs: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const flags = new Set(["expect-error", "no-sm"]);
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) usage(`unexpected argument ${a}`);
    let key = a.slice(2);
    let value;
    const eq = key.indexOf("=");
    if (eq >= 0) {
      value = key.slice(eq + 1);
      key = key.slice(0, eq);
    } else if (flags.has(key)) {
      value = true;
    } else {
      if (i + 1 >= argv.length) usage(`--${key} needs a value`);
      value = argv[++i];
    }
    opts[key] = value;
  }
  return opts;
}

function errorInfo(stanza) {
  const error = stanza.getChild("error");
  if (!error) return { condition: null, text: null, type: null };
  let condition = null;
  let text = null;
  for (const child of error.children) {
    if (typeof child === "string" || child.attrs.xmlns !== NS_STANZAS) continue;
    if (child.name === "text") text = child.text();
    else condition = child.name;
  }
  return { condition, text, type: error.attrs.type ?? null };
}

const [command, ...rest] = process.argv.slice(2);
if (!["recv", "send", "ping", "muc", "burst", "spray"].includes(command)) {
  usage("usage: client.mjs recv|send|ping|muc|burst|spray --service URI --domain D --user U --pass P ...");
}
const opts = parseArgs(rest);
for (const required of ["service", "domain", "user", "pass"]) {
  if (!opts[required]) usage(`--${required} is required`);
}
const timeoutMs = command === "muc" ? Number(opts.stay ?? 10) * 1000
  : Number(opts.timeout ?? (command === "burst" ? 600 : 20)) * 1000;
const count = Number(opts.count ?? 1);
const started = Date.now();

const xmpp = client({
  service: opts.service,
  domain: opts.domain,
  username: opts.user,
  password: opts.pass,
  resource: opts.resource ?? `${command}-${process.pid}`,
  // Each step of the login (stream open, SASL, bind) waits this long for the
  // server (@xmpp/connection's default is 2 s, which a loaded test machine
  // can exceed: "connect-error" with an empty message).
  timeout: 15000,
});
// Never reconnect: a test wants to see failures.
xmpp.reconnect.stop();
// --no-sm: no XEP-0198 on this client's own stream (its <sm/> features are
// hidden from @xmpp/client), so that a server's stream management is seen on
// s2s only. (@xmpp/client's 'h' can count stanzas from before <enable/>, e.g.
// offline messages; Prosody 0.12 then tears the session down.)
if (opts["no-sm"]) {
  xmpp.prependListener("element", (el) => {
    if (el.is("features", "http://etherx.jabber.org/streams")) {
      el.children = el.children.filter((c) => typeof c === "string" || c.name !== "sm");
    }
  });
}

let finished = false;
async function finish(code, event) {
  if (finished) return;
  finished = true;
  if (event) out(event);
  const hardExit = setTimeout(() => process.exit(code), 2000);
  try {
    await xmpp.stop();
  } catch {
    // ignore: we are leaving anyway
  }
  clearTimeout(hardExit);
  process.exit(code);
}

// --timeout counts from the moment the client is online, so that a slow
// login (a loaded machine) never eats the time a check gives the server to
// answer; getting online has a backstop of its own (--connect-timeout).
const connectTimer = setTimeout(() => {
  finish(1, { event: "connect-timeout", command, elapsed_ms: Date.now() - started });
}, Number(opts["connect-timeout"] ?? 60) * 1000);
connectTimer.unref?.();

const onTimeout = () => {
  if (command === "muc") {
    finish(0, { event: "done", command, elapsed_ms: Date.now() - started });
  } else if (command === "recv") {
    finish(2, { event: "timeout", command, received, expected: count, elapsed_ms: Date.now() - started });
  } else if (command === "send" && opts["expect-error"]) {
    finish(3, { event: "timeout", command, reason: "no error reply", elapsed_ms: Date.now() - sentAt });
  } else if (command === "spray") {
    sprayDone(true);
  } else {
    finish(1, { event: "timeout", command, elapsed_ms: Date.now() - started });
  }
};
function armTimer() {
  clearTimeout(connectTimer);
  // ping: its own request timeout (--timeout) answers first; this is a backstop.
  setTimeout(onTimeout, command === "ping" ? timeoutMs + 5000 : timeoutMs).unref?.();
}

xmpp.on("error", (err) => {
  if (!online) {
    finish(1, { event: "connect-error", message: String(err?.message ?? err), condition: err?.condition ?? null });
  } else {
    process.stderr.write(`client.mjs: ${err?.stack ?? err}\n`);
  }
});

let online = false;
let received = 0;
let sentAt = 0;
const errorReplies = [];
const to = opts.to;

// muc: the room (bare JID) and what to do once joined.
const mucRoom = command === "muc" ? String(opts.room ?? "").split("/")[0].toLowerCase() : null;
let mucJoined = false;
const jidList = (v) => (v ? String(v).split(",").filter((j) => j.length > 0) : []);

function mucCodes(stanza) {
  const x = stanza.getChild("x", NS_MUC_USER);
  return x ? x.getChildren("status").map((s) => s.attrs.code) : [];
}

const mucNicks = new Set(); // nicks seen present in the room
let mucSaid = false;

async function mucSay() {
  if (mucSaid || !opts.say || !mucJoined) return;
  if (opts["say-when"] && !mucNicks.has(opts["say-when"])) return;
  mucSaid = true;
  await xmpp.send(xml("message", { to: mucRoom, type: "groupchat", id: `g${process.pid}` }, xml("body", {}, opts.say)));
  out({ event: "said", to: mucRoom, body: opts.say });
}

async function mucOnJoined() {
  if (mucJoined) return;
  mucJoined = true;
  out({ event: "joined", from: opts.room, elapsed_ms: Date.now() - started });
  try {
    await mucSay();
    for (const jid of jidList(opts.invite)) {
      await xmpp.send(xml("message", { to: mucRoom, id: `i${process.pid}-${jid}` },
        xml("x", { xmlns: NS_MUC_USER }, xml("invite", { to: jid }, xml("reason", {}, "integration test")))));
      out({ event: "invited", to: jid });
    }
    for (const jid of jidList(opts.decline)) {
      await xmpp.send(xml("message", { to: mucRoom, id: `d${process.pid}-${jid}` },
        xml("x", { xmlns: NS_MUC_USER }, xml("decline", { to: jid }, xml("reason", {}, "integration test")))));
      out({ event: "declined", to: jid });
    }
  } catch (err) {
    out({ event: "client-error", message: String(err?.message ?? err) });
  }
}

function onMucPresence(stanza) {
  const from = stanza.attrs.from ?? "";
  if (from.split("/")[0].toLowerCase() !== mucRoom) return;
  const codes = mucCodes(stanza);
  const type = stanza.attrs.type ?? "available";
  const info = { event: "muc-presence", from, type, codes };
  if (type === "error") Object.assign(info, errorInfo(stanza));
  out(info);
  const nick = from.includes("/") ? from.slice(from.indexOf("/") + 1) : null;
  if (nick !== null && type === "available") mucNicks.add(nick);
  if (nick !== null && type === "unavailable") mucNicks.delete(nick);
  mucSay().catch((err) => out({ event: "client-error", message: String(err?.message ?? err) }));
  if (type === "error" || !codes.includes("110")) return;
  if (codes.includes("201")) {
    // A new (locked) room: accept the default configuration (instant room).
    xmpp.iqCaller
      .request(xml("iq", { type: "set", to: mucRoom },
        xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" }))), timeoutMs)
      .then(() => out({ event: "room-configured", room: mucRoom }))
      .catch((err) => out({ event: "room-config-error", room: mucRoom, message: String(err?.message ?? err) }))
      .finally(() => mucOnJoined());
    return;
  }
  mucOnJoined();
}

xmpp.on("stanza", (stanza) => {
  if (command === "muc" && stanza.is("presence")) {
    onMucPresence(stanza);
    return;
  }
  if (!stanza.is("message")) return;
  const type = stanza.attrs.type ?? "normal";
  if (type === "error") {
    const info = { event: "error-reply", from: stanza.attrs.from ?? null, id: stanza.attrs.id ?? null, ...errorInfo(stanza), elapsed_ms: Date.now() - sentAt };
    if (command === "spray") {
      out(info);
      sprayAnswered(stanza.attrs.id);
    } else if (command === "send" && opts["expect-error"]) {
      finish(0, info);
    } else {
      errorReplies.push(info);
      out(info);
    }
    return;
  }
  const body = stanza.getChildText("body");
  if (body === null) return;
  if (type === "groupchat" && command === "muc") {
    out({ event: "groupchat", from: stanza.attrs.from ?? null, body });
    return;
  }
  out({ event: "message", from: stanza.attrs.from ?? null, id: stanza.attrs.id ?? null, type, body });
  if (command === "spray") sprayAnswered(stanza.attrs.id);
  if (command === "recv") {
    received++;
    if (received >= count) finish(0, { event: "done", received, elapsed_ms: Date.now() - started });
  } else if (command === "send" && opts["expect-error"]) {
    finish(5, { event: "unexpected-reply", from: stanza.attrs.from ?? null, body });
  }
});

xmpp.on("online", async (address) => {
  online = true;
  armTimer();
  out({ event: "online", jid: address.toString(), elapsed_ms: Date.now() - started });
  try {
    if (command === "recv") {
      await xmpp.send(xml("presence"));
      out({ event: "presence-sent" });
      return;
    }
    if (command === "muc") {
      if (!/^[^@/]+@[^@/]+\/.+$/.test(String(opts.room ?? ""))) usage("--room ROOM@SERVICE/NICK is required");
      await xmpp.send(xml("presence"));
      await xmpp.send(xml("presence", { to: opts.room },
        xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: String(Number(opts.history ?? 0)) }))));
      out({ event: "presence-sent", to: opts.room });
      return;
    }
    if (command === "spray") {
      await spray();
      return;
    }
    if (!to) usage("--to is required");
    if (command === "ping") {
      const t0 = Date.now();
      try {
        await xmpp.iqCaller.request(xml("iq", { type: "get", to }, xml("ping", { xmlns: "urn:xmpp:ping" })), timeoutMs);
        finish(0, { event: "pong", from: to, elapsed_ms: Date.now() - t0 });
      } catch (err) {
        const info = err?.element ? errorInfo(err.element) : { condition: err?.condition ?? null, text: String(err?.message || err?.name || err) };
        finish(6, { event: "ping-error", from: to, ...info, elapsed_ms: Date.now() - t0 });
      }
      return;
    }
    if (command === "burst") {
      await burst();
      return;
    }
    // send
    if (!opts.body) usage("--body is required");
    const type = opts.type ?? "chat";
    sentAt = Date.now();
    for (let i = 1; i <= count; i++) {
      const body = count === 1 ? opts.body : `${opts.body} ${i}`;
      await xmpp.send(xml("message", { to, type, id: `m${process.pid}-${i}` }, xml("body", {}, body)));
      out({ event: "sent", to, body });
    }
    if (opts["expect-error"]) return; // the stanza handler or the timer ends it
    // Round trip to the own server: everything before it has been processed.
    await xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" })), timeoutMs);
    const linger = Number(opts["linger-ms"] ?? 0);
    if (linger > 0) await new Promise((resolve) => setTimeout(resolve, linger));
    if (errorReplies.length > 0) finish(4, { event: "failed", reason: "error reply", errors: errorReplies.length });
    else finish(0, { event: "done", sent: count, elapsed_ms: Date.now() - sentAt });
  } catch (err) {
    finish(1, { event: "client-error", message: String(err?.message ?? err) });
  }
});

// spray: one chat to each JID of a file, every answer printed with its id (see the header).
const sprayWaiting = new Set();
const sprayAnsweredIds = new Set();
let spraySent = 0;
let sprayAllSent = false;
let spraySettling = false;
function sprayAnswered(id) {
  if (id === undefined || id === null) return;
  sprayAnsweredIds.add(id);
  sprayWaiting.delete(id);
  sprayMaybeSettle();
}
function sprayMaybeSettle() {
  if (!sprayAllSent || spraySettling || sprayWaiting.size > 0) return;
  spraySettling = true;
  setTimeout(() => sprayDone(false), Number(opts.settle ?? 2) * 1000);
}
function sprayDone(timedOut) {
  const missing = [...sprayWaiting];
  finish(timedOut && missing.length > 0 ? 2 : 0, {
    event: "done", sent: spraySent, answered: sprayAnsweredIds.size, missing, timed_out: timedOut,
    elapsed_ms: Date.now() - sentAt,
  });
}
async function spray() {
  if (!opts["to-file"]) usage("spray: --to-file FILE is required");
  const { readFileSync } = await import("node:fs");
  const lines = readFileSync(opts["to-file"], "utf8").split("\n").filter((l) => l.trim().length > 0);
  await xmpp.send(xml("presence"));
  out({ event: "presence-sent" });
  sentAt = Date.now();
  for (const line of lines) {
    const [id, jid, mark] = line.trim().split(/\s+/);
    if (mark === "wait" && !sprayAnsweredIds.has(id)) sprayWaiting.add(id);
    await xmpp.send(xml("message", { to: jid, type: "chat", id }, xml("body", {}, `spray ${id}`)));
    spraySent++;
    out({ event: "sent", id, to: jid });
  }
  sprayAllSent = true;
  sprayMaybeSettle();
}

// burst: N chats at a steady rate, each with its own id and body (see the header).
async function burst() {
  const rate = Number(opts.rate ?? 100);
  const tag = String(opts.tag ?? `burst${process.pid}`);
  const settleMs = Number(opts.settle ?? 10) * 1000;
  if (!(count >= 1) || !(rate > 0)) usage("burst: --count >= 1 and --rate > 0 are required");
  const t0 = Date.now();
  sentAt = t0;
  out({ event: "start", tag, count, rate, t0 });
  for (let i = 1; i <= count; i++) {
    const due = t0 + ((i - 1) * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const id = `${tag}-${i}`;
    await xmpp.send(xml("message", { to, type: "chat", id }, xml("body", {}, `${tag} ${i}`)));
    out({ event: "sent", id, ms: Date.now() - t0 });
  }
  // Round trip to the own server: every chat has been handed to it.
  await xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" })), timeoutMs);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  finish(0, { event: "done", sent: count, errors: errorReplies.length, elapsed_ms: Date.now() - t0 });
}

xmpp.start().catch((err) => {
  finish(1, { event: "connect-error", message: String(err?.message ?? err), condition: err?.condition ?? null });
});
