#!/usr/bin/env node
// Table and summary for bench/scale.sh:  node scale-report.mjs RAW.jsonl OUT.json
import { readFileSync, writeFileSync } from "node:fs";

const [rawFile, outFile] = process.argv.slice(2);
const lines = readFileSync(rawFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const machine = lines.find((l) => l.kind === "machine") ?? {};
const delay = lines.find((l) => l.kind === "delay") ?? {};
const dig = lines.find((l) => l.kind === "dig") ?? null;
const end = lines.find((l) => l.kind === "end") ?? {};
// A failed first attempt is followed by a second one: the last attempt of
// each (N, mode, round) counts; the failed ones are listed.
const allRuns = lines.filter((l) => l.kind === "run");
const runs = allRuns.filter(
  (r) => !allRuns.some((o) => o !== r && o.n === r.n && o.mode === r.mode && (o.round ?? 1) === (r.round ?? 1) && (o.attempt ?? 1) > (r.attempt ?? 1)),
);
const failedAttempts = allRuns
  .filter((r) => !runs.includes(r))
  .map((r) => ({ n: r.n, mode: r.mode, round: r.round, delivered: r.result?.delivered ?? null, errors: r.result?.errors ?? null, first_error: r.result?.first_error ?? null }));

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number").sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const max = (xs) => (xs.length ? Math.max(...xs) : null);
const min = (xs) => (xs.length ? Math.min(...xs) : null);
const fmt = (x, d = 0) =>
  x === null || x === undefined || Number.isNaN(x) ? "-" : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

// One row per run (round), then one per (N, mode) over its rounds.
const perRun = runs.map((r) => {
  const s = r.servers ?? [];
  return {
    n: r.n,
    mode: r.mode,
    round: r.round ?? 1,
    expected: r.result?.expected ?? 2 * r.n * (r.n - 1),
    delivered: r.result?.delivered ?? 0,
    errors: r.result?.errors ?? 0,
    duplicates: r.result?.duplicates ?? 0,
    ok: r.rc === 0,
    dns_packets: r.dns_packets,
    dnsmasq_queries: r.dnsmasq_queries,
    time_ms: r.result?.elapsed_ms ?? null,
    p50_ms: r.result?.p50_ms ?? null,
    login_ms: r.online?.login_ms ?? null,
    cpu_ms: r.servers_cpu_ms ?? null,
    hwm: s.map((x) => x.vmhwm_kb).filter((x) => typeof x === "number"),
    heapPeak: s.map((x) => x.probe?.heap_peak_kb).filter((x) => typeof x === "number"),
    heapGc: s.map((x) => x.probe?.heap_after_gc_kb).filter((x) => typeof x === "number"),
    sessions: s.map((x) => (x.probe ? x.probe.s2s_in + x.probe.s2s_out : null)).filter((x) => x !== null),
    auth: s.map((x) => (x.probe ? x.probe.s2s_in_auth + x.probe.s2s_out_auth : null)).filter((x) => x !== null),
    tracebacks: s.reduce((a, x) => a + (x.tracebacks ?? 0), 0),
    load_before: r.load_before,
  };
});
const keys = [];
for (const r of perRun) if (!keys.some((k) => k.n === r.n && k.mode === r.mode)) keys.push({ n: r.n, mode: r.mode });
keys.sort((a, b) => a.n - b.n);
const rows = keys.map(({ n, mode }) => {
  const rs = perRun.filter((r) => r.n === n && r.mode === mode);
  const all = (f) => rs.flatMap(f);
  const times = rs.map((r) => r.time_ms).filter((x) => typeof x === "number");
  return {
    n,
    mode,
    rounds: rs.length,
    expected: rs.reduce((a, r) => a + r.expected, 0),
    delivered: rs.reduce((a, r) => a + r.delivered, 0),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    duplicates: rs.reduce((a, r) => a + r.duplicates, 0),
    all_ok: rs.every((r) => r.ok),
    dns_packets_per_round: rs.map((r) => r.dns_packets),
    dnsmasq_queries_per_round: rs.map((r) => r.dnsmasq_queries),
    time_ms: median(times),
    time_min_ms: min(times),
    time_max_ms: max(times),
    times_ms: rs.map((r) => r.time_ms),
    p50_ms: median(rs.map((r) => r.p50_ms)),
    login_ms: median(rs.map((r) => r.login_ms)),
    cpu_ms: median(rs.map((r) => r.cpu_ms)),
    hwm_median_kb: median(all((r) => r.hwm)),
    hwm_max_kb: max(all((r) => r.hwm)),
    hwm_min_kb: min(all((r) => r.hwm)),
    heap_peak_median_kb: median(all((r) => r.heapPeak)),
    heap_after_gc_median_kb: median(all((r) => r.heapGc)),
    s2s_median: median(all((r) => r.sessions)),
    s2s_min: min(all((r) => r.sessions)),
    s2s_max: max(all((r) => r.sessions)),
    s2s_authenticated_median: median(all((r) => r.auth)),
    tracebacks: rs.reduce((a, r) => a + r.tracebacks, 0),
    load_before: rs.map((r) => r.load_before),
  };
});

const head = ["N", "mode", "delivered", "DNS pkts/round", "to last chat, ms: median (min-max)", "p50 arrival (ms)", "peak RSS/server median / max (KiB)", "Lua heap/server peak / after GC (KiB)", "s2s/server (min-max)", "Prosody CPU, all servers (ms)", "load before"];
const table = [head];
for (const r of rows) {
  table.push([
    String(r.n),
    r.mode,
    `${fmt(r.delivered)}/${fmt(r.expected)}${r.errors ? ` (${r.errors} err)` : ""}${r.duplicates ? ` (${r.duplicates} dup)` : ""}`,
    fmt(median(r.dns_packets_per_round)),
    `${fmt(r.time_ms, 0)} (${fmt(r.time_min_ms, 0)}-${fmt(r.time_max_ms, 0)})`,
    fmt(r.p50_ms, 0),
    `${fmt(r.hwm_median_kb)} / ${fmt(r.hwm_max_kb)}`,
    `${fmt(r.heap_peak_median_kb)} / ${fmt(r.heap_after_gc_median_kb)}`,
    `${fmt(r.s2s_median)} (${fmt(r.s2s_min)}-${fmt(r.s2s_max)})`,
    fmt(r.cpu_ms),
    r.load_before.join(" "),
  ]);
}
const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
const md = (row) => "| " + row.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
const outLines = [md(table[0]), "| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |", ...table.slice(1).map(md)];

// Ratios: time paired within each round (then the median), memory from the
// medians over all servers and rounds.
const ratios = [];
for (const n of [...new Set(rows.map((r) => r.n))]) {
  const get = (m) => rows.find((r) => r.n === n && r.mode === m);
  const v = get("v6alt");
  if (!v) continue;
  for (const cm of ["classic", "classic_20ms"]) {
    const c = get(cm);
    if (!c) continue;
    const paired = [];
    for (const rv of perRun.filter((r) => r.n === n && r.mode === "v6alt")) {
      const rc = perRun.find((r) => r.n === n && r.mode === cm && r.round === rv.round);
      if (rc && rv.time_ms && rc.time_ms) paired.push(rv.time_ms / rc.time_ms);
    }
    const tr = median(paired);
    ratios.push({
      n,
      against: cm,
      time_ratio_paired_median: tr,
      time_ratio_per_round: paired,
      time_ratio_of_medians: v.time_ms && c.time_ms ? v.time_ms / c.time_ms : null,
      time_diff_ms: v.time_ms && c.time_ms ? v.time_ms - c.time_ms : null,
      hwm_ratio: v.hwm_median_kb && c.hwm_median_kb ? v.hwm_median_kb / c.hwm_median_kb : null,
      heap_peak_ratio: v.heap_peak_median_kb && c.heap_peak_median_kb ? v.heap_peak_median_kb / c.heap_peak_median_kb : null,
      heap_after_gc_diff_kb: v.heap_after_gc_median_kb - c.heap_after_gc_median_kb,
      cpu_ratio: v.cpu_ms && c.cpu_ms ? v.cpu_ms / c.cpu_ms : null,
      target_time: cm === "classic" ? "v6alt <= classic" : "v6alt < classic_20ms",
      time_met: tr !== null && v.time_ms && c.time_ms ? (cm === "classic" ? tr <= 1 && v.time_ms <= c.time_ms : tr < 1 && v.time_ms < c.time_ms) : false,
      memory_met: v.hwm_median_kb && c.hwm_median_kb ? Math.abs(v.hwm_median_kb / c.hwm_median_kb - 1) <= 0.05 : false,
    });
  }
}
outLines.push("");
outLines.push("| N | v6alt against | time ratio, paired per round: median (rounds) | median time diff (ms) | time target | met | peak RSS ratio | Lua heap peak ratio; after GC diff (KiB) | RSS within 5% | Prosody CPU ratio |");
outLines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const q of ratios) {
  outLines.push(
    `| ${q.n} | ${q.against} | ${fmt(q.time_ratio_paired_median, 3)} (${q.time_ratio_per_round.map((x) => fmt(x, 2)).join(", ")}) | ${q.time_diff_ms >= 0 ? "+" : ""}${fmt(q.time_diff_ms, 0)} | ${q.target_time} | ${q.time_met ? "yes" : "NO"} | ${fmt(q.hwm_ratio, 3)} | ${fmt(q.heap_peak_ratio, 3)}; ${q.heap_after_gc_diff_kb >= 0 ? "+" : ""}${fmt(q.heap_after_gc_diff_kb)} | ${q.memory_met ? "yes" : "NO"} | ${fmt(q.cpu_ratio, 3)} |`,
  );
}
// Growth from one N to the next, per mode.
const sizes = [...new Set(rows.map((r) => r.n))].sort((a, b) => a - b);
const growth = [];
for (const mode of [...new Set(rows.map((r) => r.mode))]) {
  for (let i = 1; i < sizes.length; i++) {
    const a = rows.find((r) => r.n === sizes[i - 1] && r.mode === mode);
    const b = rows.find((r) => r.n === sizes[i] && r.mode === mode);
    if (!a || !b) continue;
    growth.push({
      mode,
      from: a.n,
      to: b.n,
      chats: b.expected / b.rounds / (a.expected / a.rounds),
      time: b.time_ms && a.time_ms ? b.time_ms / a.time_ms : null,
      hwm: b.hwm_median_kb / a.hwm_median_kb,
      hwm_delta_kb: b.hwm_median_kb - a.hwm_median_kb,
      heap_peak: b.heap_peak_median_kb / a.heap_peak_median_kb,
      s2s: b.s2s_median / a.s2s_median,
    });
  }
}
if (growth.length) {
  outLines.push("");
  outLines.push("| mode | N | chats x | time x | peak RSS x (+KiB) | Lua heap peak x | s2s/server x |");
  outLines.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const g of growth)
    outLines.push(`| ${g.mode} | ${g.from} -> ${g.to} | ${fmt(g.chats, 2)} | ${fmt(g.time, 2)} | ${fmt(g.hwm, 3)} (+${fmt(g.hwm_delta_kb)}) | ${fmt(g.heap_peak, 3)} | ${fmt(g.s2s, 2)} |`);
}
outLines.push("");
outLines.push(
  `machine: ${machine.nproc} CPU (${machine.cpu}), ${Math.round((machine.mem_total_kb ?? 0) / 1048576)} GiB, kernel ${machine.kernel}, Prosody ${machine.prosody}, Node ${machine.node}; load at start ${machine.load_at_start}, at end ${end.load_at_end}; ${end.seconds} s; resolver delay: ${delay.ms} ms by ${delay.how}${dig ? ` (one SRV query from a server node: ${dig.direct_ms} ms direct, ${dig.delayed_ms} ms delayed)` : ""}`,
);
if (failedAttempts.length) {
  outLines.push("");
  for (const f of failedAttempts)
    outLines.push(`retried: N=${f.n} ${f.mode} round ${f.round}: first attempt ${f.delivered ?? "-"} delivered, ${f.errors ?? "-"} error replies${f.first_error ? ` (${f.first_error.replace(/.*<text[^>]*>([^<]*)<.*/, "$1")})` : ""}`);
}
console.log(outLines.join("\n"));
writeFileSync(outFile, JSON.stringify({ machine, delay, dig, end, rows, per_run: perRun.map(({ hwm, heapPeak, heapGc, sessions, auth, ...r }) => r), ratios, growth, failed_attempts: failedAttempts, table: outLines }, null, 2) + "\n");
