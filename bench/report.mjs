#!/usr/bin/env node
// Summarises the raw samples of scripts/bench.sh (one JSON object per line)
// into bench-results/bench.json and prints the table.
//
//   node bench/report.mjs RAW.jsonl OUT.json
import { readFileSync, writeFileSync } from "node:fs";

const [rawFile, outFile] = process.argv.slice(2);
const rows = readFileSync(rawFile, "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
const of = (kind) => rows.filter((r) => r.kind === kind);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function stats(xs) {
  if (xs.length === 0) return null;
  return { median: Number(median(xs).toFixed(3)), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, samples: xs };
}
const round = (x, d = 0) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

const result = { machine: of("machine")[0] ?? null, end: of("end")[0] ?? null, targets: {} };
delete result.machine?.kind;

// ------------------------------------------------------------ codec
result.codec = {};
for (const c of of("codec")) {
  result.codec[c.interpreter] = { date: c.date, load_before: c.load_before, rerun_after_full_run: c.rerun === true, ...c.data };
}
const lua54 = result.codec["lua5.4"];
if (lua54) {
  result.targets.codec_decode_lua54 = {
    target: ">= 1,000,000 decodes/s on Lua 5.4, no TypeScriptToLua helpers",
    value: lua54.results.decode.median_ops_per_s,
    ts_helpers: lua54.ts_helpers_in_v6alt_lua,
    met: lua54.results.decode.median_ops_per_s >= 1e6 && lua54.ts_helpers_in_v6alt_lua === 0,
  };
}

// ------------------------------------------------------------ stanza path
const pairs = ["v6alt", "classic", "classic_nomod"];
const bursts = of("burst").filter((b) => b.round > 0);
result.stanza_path = { pairs: {}, ratios: {} };
const rate = (b) => b.count / ((b.recv.last_ms - b.send.start_ms) / 1000);
const acceptRate = (b) => b.count / ((b.send.acked_ms - b.send.start_ms) / 1000);
let lossTotal = 0;
let failed = 0;
for (const pair of pairs) {
  const mine = bursts.filter((b) => b.pair === pair);
  const ok = mine.filter((b) => b.ok);
  failed += mine.length - ok.length;
  for (const b of ok) lossTotal += b.count - b.recv.received + (b.send.errors ?? 0);
  result.stanza_path.pairs[pair] = {
    messages_per_burst: mine[0]?.count ?? null,
    bursts: mine.length,
    bursts_complete: ok.length,
    // null when a burst did not complete (its receiver's count is in raw.jsonl)
    lost: mine.length === ok.length ? ok.reduce((n, b) => n + (b.count - b.recv.received), 0) : null,
    error_replies: ok.reduce((n, b) => n + (b.send.errors ?? 0), 0),
    duplicates: ok.reduce((n, b) => n + (b.recv.duplicates ?? 0), 0),
    msgs_per_s: stats(ok.map(rate).map((x) => round(x))),
    accepted_by_sender_server_msgs_per_s: stats(ok.map(acceptRate).map((x) => round(x))),
    load_during: ok.map((b) => b.load),
    // CPU time per chat (microseconds), from /proc/PID/task/*/schedstat of the
    // servers and process.cpuUsage() of the clients: unlike msg/s, hardly
    // affected by other load on the machine.
    cpu_us_per_msg: {
      sender_server: stats(ok.map((b) => round(b.sender_server_cpu_ns / 1000 / b.count, 2))),
      receiver_server: stats(ok.map((b) => round(b.receiver_server_cpu_ns / 1000 / b.count, 2))),
      both_servers: stats(ok.map((b) => round((b.sender_server_cpu_ns + b.receiver_server_cpu_ns) / 1000 / b.count, 2))),
      sender_client: stats(ok.map((b) => round((b.send.cpu_ms * 1000) / b.count, 2))),
      receiver_client: stats(ok.map((b) => round((b.recv.cpu_ms * 1000) / b.count, 2))),
    },
  };
}
for (const base of ["classic", "classic_nomod"]) {
  const perRound = [];
  for (const r of [...new Set(bursts.map((b) => b.round))]) {
    const a = bursts.find((b) => b.round === r && b.pair === "v6alt" && b.ok);
    const c = bursts.find((b) => b.round === r && b.pair === base && b.ok);
    if (a && c) perRound.push(round(rate(a) / rate(c), 4));
  }
  const ma = result.stanza_path.pairs.v6alt.msgs_per_s?.median;
  const mb = result.stanza_path.pairs[base].msgs_per_s?.median;
  const cpuA = result.stanza_path.pairs.v6alt.cpu_us_per_msg.sender_server?.median;
  const cpuB = result.stanza_path.pairs[base].cpu_us_per_msg.sender_server?.median;
  const cpuA2 = result.stanza_path.pairs.v6alt.cpu_us_per_msg.both_servers?.median;
  const cpuB2 = result.stanza_path.pairs[base].cpu_us_per_msg.both_servers?.median;
  result.stanza_path.ratios[`v6alt_over_${base}`] = {
    // sender-server CPU per chat of the base pair / of the v6alt pair: the
    // throughput ratio a CPU-bound sending server would show.
    cpu_sender_server: cpuA && cpuB ? round(cpuB / cpuA, 4) : null,
    cpu_both_servers: cpuA2 && cpuB2 ? round(cpuB2 / cpuA2, 4) : null,
    per_round: perRound,
    median_of_round_ratios: round(median(perRound), 4),
    ratio_of_medians: ma && mb ? round(ma / mb, 4) : null,
  };
}
const mainRatio = result.stanza_path.ratios.v6alt_over_classic.median_of_round_ratios;
result.targets.stanza_ratio = {
  target: "(a) v6alt / (b) classic DNS >= 0.98, no message lost",
  value: mainRatio,
  lost: failed ? `${failed} bursts incomplete` : lossTotal,
  met: mainRatio !== null && mainRatio >= 0.98 && failed === 0 && lossTotal === 0,
};

// Attribution: the v6alt pair with the real policy.decide and with it stubbed
// on the sender, alternating, same processes.
{
  const attr = of("burst").filter((b) => b.ok && b.pair.startsWith("attr_"));
  const cpu = (b) => b.sender_server_cpu_ns / 1000 / b.count;
  const real = attr.filter((b) => b.pair === "attr_v6alt").map(cpu);
  const stub = attr.filter((b) => b.pair === "attr_v6alt_nodecide").map(cpu);
  if (real.length && stub.length) {
    result.attribution = {
      what: "sender-server CPU per chat (us), v6alt pair, policy.decide real vs stubbed via the admin shell",
      real_decide: stats(real.map((x) => round(x, 2))),
      stubbed_decide: stats(stub.map((x) => round(x, 2))),
      policy_decide_us_per_stanza: round(median(real) - median(stub), 2),
      classic_sender_us_per_stanza: result.stanza_path.pairs.classic.cpu_us_per_msg.sender_server?.median ?? null,
    };
  }
}

// ------------------------------------------------------------ connection set-up
result.setup = {};
for (const mode of ["default", "nagle_off"]) {
  const rowsOfMode = of("setup").filter((s) => (s.mode ?? "default") === mode);
  if (!rowsOfMode.length) continue;
  const m = (result.setup[mode] = {});
  for (const pair of pairs) {
    const mine = rowsOfMode.filter((s) => s.pair === pair);
    m[pair] = { ms: stats(mine.map((s) => round(s.ms, 2))) };
    if (mode === "default") m[pair].first_ever_ms = round(mine.find((s) => s.round === 1)?.ms ?? null, 2);
  }
  // Paired: v6alt minus classic within each round.
  const diffs = [];
  for (const r of [...new Set(rowsOfMode.map((s) => s.round))]) {
    const a = rowsOfMode.find((s) => s.round === r && s.pair === "v6alt");
    const c = rowsOfMode.find((s) => s.round === r && s.pair === "classic");
    if (a && c) diffs.push(round(a.ms - c.ms, 2));
  }
  m.v6alt_minus_classic_ms = stats(diffs);
}
{
  const pick = result.setup.nagle_off ?? result.setup.default;
  const sv = pick?.v6alt.ms?.median;
  const sc = pick?.classic.ms?.median;
  result.targets.setup = {
    target: "v6alt no slower than classic DNS (median; judged with nagle = false, where the ~40 ms delayed-ACK stall common to both is gone)",
    mode: result.setup.nagle_off ? "nagle_off" : "default",
    v6alt_ms: sv,
    classic_ms: sc,
    ratio_v6alt_over_classic: sv && sc ? round(sv / sc, 3) : null,
    default_settings: result.setup.default
      ? { v6alt_ms: result.setup.default.v6alt.ms?.median, classic_ms: result.setup.default.classic.ms?.median }
      : null,
    met: sv !== undefined && sc !== undefined && sv <= sc,
  };
}

// ------------------------------------------------------------ failure
result.failure = {};
for (const b of of("bounce")) {
  const f = (result.failure[b.case] ??= { to: b.to, samples: [], condition: b.sample.condition, text: b.sample.text });
  f.samples.push(round(b.sample.ms, 2));
}
for (const f of Object.values(result.failure)) {
  Object.assign(f, stats(f.samples));
}
const mal = result.failure.v6alt_malformed;
result.targets.failure_malformed = {
  target: "malformed .v6.alt name: error reply in under 50 ms",
  value_ms: mal?.median ?? null,
  max_ms: mal?.max ?? null,
  met: mal ? mal.max < 50 : false,
};

// ------------------------------------------------------------ memory
result.memory = {};
for (const m of of("memory")) {
  (result.memory[m.phase] ??= {})[m.server] = {
    pair: m.pair, role: m.role, module: m.module === 1,
    vmrss_kb: m.vmrss_kb, vmhwm_kb: m.vmhwm_kb,
    lua_heap_after_full_gc_kb: m.lua_heap_after_full_gc_kb === null ? null : round(m.lua_heap_after_full_gc_kb),
  };
}
const after = result.memory.after_burst;
if (after) {
  const diff = (x, y) => ({
    vmrss_kb: after[x].vmrss_kb - after[y].vmrss_kb,
    lua_heap_after_full_gc_kb: round(after[x].lua_heap_after_full_gc_kb - after[y].lua_heap_after_full_gc_kb),
  });
  result.memory.module_cost_after_burst = {
    "classic sender (ca, module) - classic_nomod sender (na)": diff("ca", "na"),
    "classic receiver (cb, module) - classic_nomod receiver (nb)": diff("cb", "nb"),
    "v6alt sender (va) - classic_nomod sender (na)": diff("va", "na"),
    "v6alt receiver (vb) - classic_nomod receiver (nb)": diff("vb", "nb"),
  };
}
result.dns = of("dns").map(({ kind, ...d }) => d);

// ------------------------------------------------------------ DNS section (bench/dns.sh)
// 6.1: dnsperf against each server, one run each; ratios to dnsmasq's run.
// Pass "mixed": the whole query file (AAAA, subdomain AAAA, SRV), dnsmasq with
// every record; pass "aaaa": the AAAA queries only, dnsmasq with the hosts file only.
const dnsRuns = of("dnsperf");
if (dnsRuns.length) {
  const dm = of("dns_machine");
  result.dns_servers = {
    machine: dm.find((r) => !r.phase) ?? null,
    end: dm.find((r) => r.phase === "end") ?? null,
    passes: {},
  };
  for (const r of dnsRuns) {
    const pass = r.pass ?? "mixed";
    const base = dnsRuns.find((b) => (b.pass ?? "mixed") === pass && b.server.startsWith("dnsmasq"));
    (result.dns_servers.passes[pass] ??= {})[r.server] = {
      rerun_after_full_run: r.rerun === true,
      qps: round(r.qps), sent: r.sent, completed: r.completed, lost: r.lost, codes: r.codes, run_s: r.run_s,
      avg_ms: r.avg_ms, min_ms: r.min_ms, max_ms: r.max_ms, stddev_ms: r.stddev_ms, p50_ms: r.p50_ms, p99_ms: r.p99_ms, p999_ms: r.p999_ms,
      server_cpu_us_per_query: r.completed ? round(r.server_cpu_ns / 1000 / r.completed, 2) : null,
      ratio_to_dnsmasq_qps: base?.qps ? round(r.qps / base.qps, 3) : null,
      load_before: r.load_before,
    };
  }
  const ps = result.dns_servers.passes;
  const d = ps.mixed?.["dnsd-lua5.4"];
  const a = ps.aaaa?.["dnsd-lua5.4"];
  result.targets.dnsd_vs_dnsmasq = {
    target: "v6alt-dnsd (Lua 5.4) at least as many queries/s as dnsmasq answering the same names from files, same run (judged on both passes)",
    value_mixed: d?.ratio_to_dnsmasq_qps ?? null,
    value_aaaa_only: a?.ratio_to_dnsmasq_qps ?? null,
    luajit_mixed: ps.mixed?.["dnsd-luajit"]?.ratio_to_dnsmasq_qps ?? null,
    luajit_aaaa_only: ps.aaaa?.["dnsd-luajit"]?.ratio_to_dnsmasq_qps ?? null,
    met_mixed: (d?.ratio_to_dnsmasq_qps ?? 0) >= 1 && d.lost === 0,
    met_aaaa_only: (a?.ratio_to_dnsmasq_qps ?? 0) >= 1 && a.lost === 0,
  };
  result.targets.dnsd_vs_dnsmasq.met = result.targets.dnsd_vs_dnsmasq.met_mixed && result.targets.dnsd_vs_dnsmasq.met_aaaa_only;
}
// 6.2: the listener's cost: bursts with the listener idle / serving dnsperf /
// dnsperf aimed at v6alt-dnsd elsewhere (control), ratios within a round.
{
  const cb = of("burst").filter((b) => b.round > 0 && b.pair.startsWith("dnscost_"));
  if (cb.length) {
    const modes = ["dnscost_idle", "dnscost_listener", "dnscost_control"];
    const c = (result.dns_listener_cost = { modes: {}, ratios: {} });
    for (const m of modes) {
      const mine = cb.filter((b) => b.pair === m);
      const ok = mine.filter((b) => b.ok);
      const dp = of("dnscost").filter((r) => r.pair === m);
      c.modes[m] = {
        messages_per_burst: mine[0]?.count ?? null,
        bursts: mine.length,
        bursts_complete: ok.length,
        lost: mine.length === ok.length ? ok.reduce((n, b) => n + (b.count - b.recv.received) + (b.send.errors ?? 0), 0) : null,
        msgs_per_s: stats(ok.map(rate).map((x) => round(x))),
        sender_server_cpu_us_per_msg: stats(ok.map((b) => round(b.sender_server_cpu_ns / 1000 / b.count, 2))),
        receiver_server_cpu_us_per_msg: stats(ok.map((b) => round(b.receiver_server_cpu_ns / 1000 / b.count, 2))),
        load_during: ok.map((b) => b.load),
        dns_qps: dp.length ? stats(dp.map((r) => round(r.qps))) : null,
        dns_queries: dp.reduce((n, r) => n + r.completed, 0) || null,
        dns_lost: dp.length ? dp.reduce((n, r) => n + r.lost, 0) : null,
        dns_codes: dp.map((r) => r.codes),
        dns_avg_ms: dp.length ? stats(dp.map((r) => r.avg_ms)) : null,
      };
    }
    const perRound = (num, den, f) => {
      const out = [];
      for (const r of [...new Set(cb.map((b) => b.round))]) {
        const a = cb.find((b) => b.round === r && b.pair === num && b.ok);
        const z = cb.find((b) => b.round === r && b.pair === den && b.ok);
        if (a && z) out.push(round(f(a, z), 4));
      }
      return out;
    };
    for (const [name, num, den] of [["listener_over_idle", "dnscost_listener", "dnscost_idle"], ["control_over_idle", "dnscost_control", "dnscost_idle"], ["listener_over_control", "dnscost_listener", "dnscost_control"]]) {
      const thr = perRound(num, den, (a, z) => rate(a) / rate(z));
      const cpu = perRound(num, den, (a, z) => a.sender_server_cpu_ns / z.sender_server_cpu_ns);
      c.ratios[name] = {
        throughput_per_round: thr,
        throughput_median_of_round_ratios: round(median(thr), 4),
        sender_server_cpu_per_round: cpu,
        sender_server_cpu_median: round(median(cpu), 4),
      };
    }
    // Prosody's own CPU time, no stanzas: idle vs answering the query rate.
    const cpuRows = of("dnscost").filter((r) => r.phase === "cpu");
    if (cpuRows.length) {
      const pct = (r) => (r.cpu_ns / r.wall_ns) * 100;
      const idle = cpuRows.filter((r) => r.mode === "idle");
      const busy = cpuRows.filter((r) => r.mode === "listener");
      const idlePct = median(idle.map(pct));
      const busyPct = median(busy.map(pct));
      const perQuery = busy.map((r) => (r.cpu_ns - (idlePct / 100) * r.wall_ns) / 1000 / r.completed);
      c.prosody_cpu_no_stanzas = {
        idle_pct_of_a_cpu: stats(idle.map((r) => round(pct(r), 3))),
        listener_pct_of_a_cpu: stats(busy.map((r) => round(pct(r), 3))),
        dns_qps: stats(busy.map((r) => round(r.qps))),
        dns_lost: busy.reduce((n, r) => n + r.lost, 0),
        listener_share_pct: round(busyPct - idlePct, 3),
        us_per_query: stats(perQuery.map((x) => round(x, 1))),
        dnsd_lua54_pct_of_a_cpu: stats(cpuRows.filter((r) => r.mode === "dnsd").map((r) => round(pct(r), 3))),
        dnsd_lua54_us_per_query: stats(cpuRows.filter((r) => r.mode === "dnsd").map((r) => round(r.cpu_ns / 1000 / r.completed, 1))),
        // A sender whose CPU is saturated by stanzas loses this share of its rate.
        projected_throughput_ratio_cpu_bound: round(1 - (busyPct - idlePct) / 100, 4),
      };
    }
    const v = c.ratios.listener_over_idle.throughput_median_of_round_ratios;
    const lost = modes.reduce((n, m) => n + (c.modes[m].lost ?? 0), 0);
    // Judged on both: the measured per-round throughput ratio, and the ratio a
    // CPU-bound sender would show given the CPU the listener takes (the
    // throughput ratio alone is unreliable on a VM whose vCPUs run faster
    // when kept busy: see control_over_idle).
    const projected = c.prosody_cpu_no_stanzas?.projected_throughput_ratio_cpu_bound ?? null;
    result.targets.dns_listener_cost = {
      target: "stanza throughput with the listener serving 1,000 queries/s at most 5% below the listener idle (per-round ratio, median; and the CPU-bound projection from the listener's CPU share)",
      value: v,
      control_over_idle: c.ratios.control_over_idle.throughput_median_of_round_ratios,
      listener_over_control: c.ratios.listener_over_control.throughput_median_of_round_ratios,
      projected_cpu_bound: c.prosody_cpu_no_stanzas?.projected_throughput_ratio_cpu_bound ?? null,
      lost,
      met_throughput: v !== null && v >= 0.95 && lost === 0,
      met_cpu_projection: projected !== null && projected >= 0.95,
      met: v !== null && v >= 0.95 && lost === 0 && projected !== null && projected >= 0.95,
    };
  }
}
result.s2s_auth = of("auth").map(({ kind, ...d }) => d);
result.route_check_in_prosody = of("inprocess").map(({ kind, ...d }) => d)[0] ?? null;

writeFileSync(outFile, JSON.stringify(result, null, 2) + "\n");

// ------------------------------------------------------------ table
const lines = [];
const fmt = (x, d = 0) => (x === null || x === undefined ? "-" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const row = (...cells) => lines.push(`| ${cells.join(" | ")} |`);
const m = result.machine;
if (m) {
  lines.push(`code: git ${m.git_head ?? "?"}, dist/ sha256 ${m.dist_sha256_16 ?? "?"}`);
  lines.push(`machine: ${m.nproc} CPU (${m.cpu}), ${m.lua}, ${m.luajit}, Prosody ${m.prosody}, node ${m.node}, ${m.date}, load at start ${m.load_at_start}`);
}
for (const [lua, c] of Object.entries(result.codec)) {
  lines.push(`codec on ${c.lua}: ${c.date}, load average before it ${c.load_before}${c.rerun_after_full_run ? " (re-run of the codec part after the full run)" : ""}`);
}
lines.push("");
row("figure", "median", "min", "max", "target", "met");
row("---", "---:", "---:", "---:", "---", "---");
for (const [lua, c] of Object.entries(result.codec)) {
  for (const op of ["encode", "decode", "decode_sub", "route_check"]) {
    const r = c.results[op];
    const target = lua === "lua5.4" && op === "decode" ? ">= 1,000,000/s" : "";
    const met = target ? (result.targets.codec_decode_lua54.met ? "yes" : "NO") : "";
    row(`codec ${lua} ${op} (ops/s)`, fmt(r.median_ops_per_s), fmt(r.min_ops_per_s), fmt(r.max_ops_per_s), target, met);
  }
}
if (lua54) row("`__TS__` helpers in v6alt.lua", fmt(lua54.ts_helpers_in_v6alt_lua), "", "", "0", lua54.ts_helpers_in_v6alt_lua === 0 ? "yes" : "NO");
for (const pair of pairs) {
  const p = result.stanza_path.pairs[pair];
  if (!p.msgs_per_s) continue;
  row(`stanza path ${pair} (msg/s, ${fmt(p.messages_per_burst)} chats x ${p.bursts}, lost ${p.lost ?? "?"})`,
    fmt(p.msgs_per_s.median), fmt(p.msgs_per_s.min), fmt(p.msgs_per_s.max), "no loss", p.lost === 0 && p.error_replies === 0 ? "yes" : "NO");
}
for (const pair of pairs) {
  const c = result.stanza_path.pairs[pair].cpu_us_per_msg;
  if (!c.sender_server) continue;
  row(`CPU per chat ${pair}: sender server / receiver server (us)`, `${fmt(c.sender_server.median, 1)} / ${fmt(c.receiver_server.median, 1)}`,
    `${fmt(c.sender_server.min, 1)} / ${fmt(c.receiver_server.min, 1)}`, `${fmt(c.sender_server.max, 1)} / ${fmt(c.receiver_server.max, 1)}`, "", "");
}
if (result.attribution) {
  const a = result.attribution;
  row("sender CPU per chat, v6alt: real policy.decide / stubbed (us)", `${fmt(a.real_decide.median, 1)} / ${fmt(a.stubbed_decide.median, 1)}`,
    `${fmt(a.real_decide.min, 1)} / ${fmt(a.stubbed_decide.min, 1)}`, `${fmt(a.real_decide.max, 1)} / ${fmt(a.stubbed_decide.max, 1)}`,
    `policy.decide: ${fmt(a.policy_decide_us_per_stanza, 1)} us/stanza`, "");
}
for (const [name, r] of Object.entries(result.stanza_path.ratios)) {
  if (!r.per_round.length) continue;
  const target = name === "v6alt_over_classic" ? ">= 0.98" : "";
  row(`throughput ratio ${name.replace(/_/g, " ")} (per round)`, fmt(r.median_of_round_ratios, 3), fmt(Math.min(...r.per_round), 3), fmt(Math.max(...r.per_round), 3),
    target, target ? (result.targets.stanza_ratio.met ? "yes" : "NO") : "");
  row(`CPU ratio ${name.replace(/_/g, " ")}: sender server, both servers`, `${fmt(r.cpu_sender_server, 3)}, ${fmt(r.cpu_both_servers, 3)}`, "", "", "", "");
}
for (const [mode, m] of Object.entries(result.setup)) {
  for (const pair of pairs) {
    const s = m[pair];
    if (!s?.ms) continue;
    const judged = mode === result.targets.setup.mode && pair === "v6alt";
    row(`connection set-up ${pair}, ${mode === "default" ? "default settings" : "nagle = false"} (ms${s.first_ever_ms ? `; first ever ${fmt(s.first_ever_ms, 1)}` : ""})`,
      fmt(s.ms.median, 1), fmt(s.ms.min, 1), fmt(s.ms.max, 1), judged ? "<= classic" : "", judged ? (result.targets.setup.met ? "yes" : "NO") : "");
  }
  if (m.v6alt_minus_classic_ms) {
    const d = m.v6alt_minus_classic_ms;
    row(`connection set-up v6alt - classic, same round, ${mode === "default" ? "default settings" : "nagle = false"} (ms)`, fmt(d.median, 2), fmt(d.min, 2), fmt(d.max, 2), "", "");
  }
}
for (const [name, f] of Object.entries(result.failure)) {
  row(`error reply ${name.replace(/_/g, " ")} (ms, n=${f.n}, ${f.condition})`, fmt(f.median, 1), fmt(f.min, 1), fmt(f.max, 1),
    name === "v6alt_malformed" ? "< 50 ms" : "", name === "v6alt_malformed" ? (result.targets.failure_malformed.met ? "yes" : "NO") : "");
}
if (after) {
  for (const s of Object.keys(after)) {
    const x = after[s];
    row(`VmRSS after bursts ${s} (${x.pair} ${x.role}${x.module ? ", module" : ", no module"}) (KiB)`, fmt(x.vmrss_kb), "", "", `Lua heap after GC ${fmt(x.lua_heap_after_full_gc_kb)} KiB`, "");
  }
  for (const [what, d] of Object.entries(result.memory.module_cost_after_burst)) {
    row(`memory ${what} (KiB)`, `${d.vmrss_kb >= 0 ? "+" : ""}${fmt(d.vmrss_kb)} RSS`, "", "", `Lua heap ${d.lua_heap_after_full_gc_kb >= 0 ? "+" : ""}${fmt(d.lua_heap_after_full_gc_kb)} KiB`, "");
  }
}
const ip = result.route_check_in_prosody;
if (ip) row(`route check in Prosody (${ip.server}): decode / decode+policy.decide (us per stanza)`, `${fmt(ip.decode_us, 2)} / ${fmt(ip.route_check_us, 2)}`, "", "", "", "");
for (const d of result.dns) {
  row(`DNS queries answered by dnsmasq (${d.phase === "setup" ? "after the set-up rounds" : "whole run"}); for .v6.alt names`, `${fmt(d.queries)}; ${fmt(d.v6alt_queries)}`, "", "", "", "");
}
if (result.dns_servers) {
  const x = result.dns_servers;
  lines.push("");
  if (x.machine) lines.push(`DNS: ${x.machine.date}, load before ${x.machine.load_before}, dnsperf ${x.machine.dnsperf}, dnsmasq ${x.machine.dnsmasq}; ${x.machine.queries} (sha256 ${x.machine.queries_sha256_16}); ${x.machine.settings}${x.end ? `; section took ${x.end.seconds} s` : ""}`);
  lines.push("");
  row("DNS server (UDP, dnsperf)", "queries/s", "vs dnsmasq", "avg ms", "p50 ms", "p99 ms", "max ms", "lost", "server CPU us/query", "target", "met");
  row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---", "---");
  const label = {
    dnsmasq: "dnsmasq (hosts file + srv-host)", "dnsmasq-hosts": "dnsmasq (hosts file only)", "dnsd-lua5.4": "v6alt-dnsd, Lua 5.4",
    "dnsd-luajit": "v6alt-dnsd, LuaJIT", prosody: "Prosody 13 listener (Lua 5.4)",
  };
  const passLabel = { mixed: "all queries", aaaa: "AAAA queries only" };
  for (const [pass, servers] of Object.entries(x.passes)) {
    for (const [name, r] of Object.entries(servers)) {
      const judged = name === "dnsd-lua5.4";
      const met = pass === "aaaa" ? result.targets.dnsd_vs_dnsmasq.met_aaaa_only : result.targets.dnsd_vs_dnsmasq.met_mixed;
      row(`${passLabel[pass] ?? pass}: ${label[name] ?? name}`, fmt(r.qps), fmt(r.ratio_to_dnsmasq_qps, 3), fmt(r.avg_ms, 3), fmt(r.p50_ms, 3), fmt(r.p99_ms, 3), fmt(r.max_ms, 3),
        `${fmt(r.lost)} of ${fmt(r.sent)}`, fmt(r.server_cpu_us_per_query, 1), judged ? ">= dnsmasq" : "", judged ? (met ? "yes" : "NO") : "");
    }
  }
}
if (result.dns_listener_cost) {
  const c = result.dns_listener_cost;
  lines.push("");
  row("listener cost (da -> db chats)", "msg/s median", "min", "max", "sender CPU us/chat", "DNS q/s during", "DNS lost", "lost chats");
  row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:");
  const label = { dnscost_idle: "listener idle", dnscost_listener: "dnsperf -> the listener", dnscost_control: "dnsperf -> v6alt-dnsd (control)" };
  for (const [m, r] of Object.entries(c.modes)) {
    row(`${label[m]} (${fmt(r.messages_per_burst)} chats x ${r.bursts})`, fmt(r.msgs_per_s?.median), fmt(r.msgs_per_s?.min), fmt(r.msgs_per_s?.max),
      fmt(r.sender_server_cpu_us_per_msg?.median, 1), r.dns_qps ? fmt(r.dns_qps.median) : "-", r.dns_lost ?? "-", r.lost ?? "?");
  }
  lines.push("");
  row("ratio (per round, median)", "throughput", "min", "max", "sender CPU per chat", "target", "met");
  row("---", "---:", "---:", "---:", "---:", "---", "---");
  for (const [name, r] of Object.entries(c.ratios)) {
    const judged = name === "listener_over_idle";
    row(name.replace(/_/g, " "), fmt(r.throughput_median_of_round_ratios, 3), fmt(Math.min(...r.throughput_per_round), 3), fmt(Math.max(...r.throughput_per_round), 3),
      fmt(r.sender_server_cpu_median, 3), judged ? ">= 0.95" : "", judged ? (result.targets.dns_listener_cost.met_throughput ? "yes" : "NO") : "");
  }
  if (c.prosody_cpu_no_stanzas) {
    const q = c.prosody_cpu_no_stanzas;
    row("listener over idle, CPU-bound projection (1 - listener CPU share)", fmt(q.projected_throughput_ratio_cpu_bound, 3), "", "", "", ">= 0.95",
      result.targets.dns_listener_cost.met_cpu_projection ? "yes" : "NO");
  }
  const q = c.prosody_cpu_no_stanzas;
  if (q) {
    lines.push("");
    lines.push(`Prosody with the listener, no stanzas (${q.idle_pct_of_a_cpu.n} x 3 s idle, 4 s busy): idle ${fmt(q.idle_pct_of_a_cpu.median, 2)} % of a CPU, ` +
      `answering ${fmt(q.dns_qps.median)} queries/s ${fmt(q.listener_pct_of_a_cpu.median, 2)} % (lost ${q.dns_lost}): ` +
      `the listener's share ${fmt(q.listener_share_pct, 2)} %, ${fmt(q.us_per_query.median, 1)} us per query; ` +
      `a CPU-bound sender would keep ${fmt(q.projected_throughput_ratio_cpu_bound, 3)} of its stanza rate. ` +
      `v6alt-dnsd (Lua 5.4) at the same rate: ${fmt(q.dnsd_lua54_pct_of_a_cpu?.median, 2)} % of a CPU, ${fmt(q.dnsd_lua54_us_per_query?.median, 1)} us per query`);
  }
}
console.log(lines.join("\n"));
