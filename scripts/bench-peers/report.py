#!/usr/bin/env python3
"""Figures of scripts/bench --peers.

  report.py run SERVER LOAD ROUND WRK_OUTPUT "USER SYS" SERVER_CPU REDIS_CPU
      one wrk run -> one line of runs.txt:
      "server load round units seconds server_cpu_s redis_cpu_s wrk_cpu_s failures p50 p99
       note" (note: the code flow's "browsers:N", the signed-in user it ended with; the
       refresh grant's "id_tokens:N", answers that carried an id_token too)
  report.py table RUNS --rss L_KIB PEER_KIB REDIS_RSS_B REDIS_USED_B --context ...
      runs.txt -> the Markdown tables (medians over the rounds, ratios Latchkey / peer)
"""

import re
import statistics
import sys

LOADS = [
    ("userinfo", "userinfo (Bearer, {c} conns)", "req/s"),
    ("refresh", "refresh grant ({c} chains, rotation on both)", "tokens/s"),
    ("flow", "full code flow (authorize with consent remembered → code → token exchange with PKCE, {c} conns)", "flows/s"),
]


def run_line(server, load, rnd, path, times, server_cpu, redis_cpu):
    text = open(path).read()
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    if not m:
        raise SystemExit(f"no wrk summary in {path}:\n{text[:500]}")
    requests, secs = int(m[1]), float(m[2]) * (60 if m[3] == "m" else 1)
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", text) or [0, 0])[1])
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    note = "-"
    if load == "userinfo":
        units, failures = requests - non2xx, non2xx + socket_errors
    elif load == "refresh":
        m = re.search(r"refreshed (\d+) broken (\d+) id_tokens (\d+)", text)
        units, failures = int(m[1]), int(m[2]) + socket_errors
        note = f"id_tokens:{m[3]}"
    else:
        m = re.search(r"flows (\d+) lost (\d+) failed (\d+) browsers (\d+)", text)
        units, failures = int(m[1]), int(m[2]) + int(m[3]) + socket_errors
        note = f"browsers:{m[4]}"
    user, sys_ = (float(x) for x in times.split())
    pct = {p: (re.search(rf"^\s+{p}%\s+(\S+)", text, re.M) or [None, "?"])[1] for p in ("50", "99")}
    print(server, load, rnd, units, secs, round(float(server_cpu), 3), round(float(redis_cpu), 3),
          round(user + sys_, 3), failures, pct["50"], pct["99"], note)


def read_runs(path):
    runs = {}
    for line in open(path):
        f = line.split()
        server, load, units, secs = f[0], f[1], int(f[3]), float(f[4])
        server_cpu, redis_cpu, wrk_cpu, failures = float(f[5]), float(f[6]), float(f[7]), int(f[8])
        per = 1e6 / max(units, 1)
        runs.setdefault((server, load), []).append({
            "round": int(f[2]), "rate": units / secs, "cpu": server_cpu * per, "redis": redis_cpu * per,
            "client": 100 * wrk_cpu / secs, "failures": failures, "p50": f[9], "p99": f[10],
            "note": f[11]})
    return runs


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def verdict(ok):
    return "met" if ok else "not met"


def table(runs_path, rss, context):
    l_kib, p_kib, redis_rss, redis_used = (int(x) for x in rss)
    (date, cores, cpu, load_before, load_after, node, peer_version, redis, duration, rounds,
     c_info, c_refresh, c_flow, same_key) = context
    conns = {"userinfo": c_info, "refresh": c_refresh, "flow": c_flow}
    runs = read_runs(runs_path)
    print(f"Measured {date} on {cores} cores ({cpu}); load average {load_before} before the runs, "
          f"{load_after} after. Latchkey (release build) on Redis {redis} (its own, loopback); "
          f"node oidc-provider {peer_version} on Node.js {node}; the same RSA-2048 key on both "
          f"(both JWKS publish it: {same_key}). wrk -t1, runs of {duration}, {rounds} interleaved "
          "rounds; medians over the rounds. CPU µs per unit: the server process's utime+stime "
          "(/proc/PID/stat) over the run ÷ units; Latchkey's Redis beside it (INFO cpu).")
    print()
    print("| path | Latchkey | node oidc-provider | Latchkey ÷ oidc-provider |")
    print("|---|---|---|---|")
    ratios = {}
    for load, label, unit in LOADS:
        lk, pe = runs.get(("latchkey", load), []), runs.get(("peer", load), [])
        if not lk or not pe:
            continue
        rate_r = med(lk, "rate") / max(med(pe, "rate"), 1e-9)
        cpu_r = med(lk, "cpu") / max(med(pe, "cpu"), 1e-9)
        both_r = (med(lk, "cpu") + med(lk, "redis")) / max(med(pe, "cpu"), 1e-9)
        ratios[load] = (rate_r, cpu_r)
        print(f"| {label.format(c=conns[load])} | {med(lk, 'rate'):,.0f} {unit} · {med(lk, 'cpu'):,.0f} µs "
              f"(+ Redis {med(lk, 'redis'):,.0f}) | {med(pe, 'rate'):,.0f} · {med(pe, 'cpu'):,.0f} µs | "
              f"{rate_r:.2f}× rate, {cpu_r:.2f}× CPU ({both_r:.2f}× with Redis) |")
    print(f"| server RSS after the runs | {l_kib / 1024:.1f} MiB (+ Redis {redis_rss / 2**20:.1f} RSS, "
          f"{redis_used / 2**20:.1f} used) | {p_kib / 1024:.1f} MiB | |")
    print()
    print("Every run (units: userinfo answers 2xx, rotated refresh tokens, finished flows; "
          "failures: answers that were not, and socket errors; for Latchkey's code flow these "
          "include the authorization requests sent with a browser whose session had just been "
          "ended to make room (max_sessions_per_user), each answered with a redirect to sign in; "
          "notes: browsers, the signed-in user a code-flow run ended with (of those set up; "
          "each run goes on from the last one's), and id_tokens, "
          "the refresh answers that carried an id_token too (a second RSA signature); wrk CPU: the load "
          "generator's own user+sys time, % of one core):")
    print()
    print("| load | round | server | rate /s | server µs/unit | Redis µs/unit | wrk CPU | failures | p50 / p99 per request | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for load, _, _ in LOADS:
        rows = [(r["round"], s, r) for s in ("latchkey", "peer") for r in runs.get((s, load), [])]
        for rnd, s, r in sorted(rows, key=lambda x: (x[0], x[1])):
            print(f"| {load} | {rnd} | {s} | {r['rate']:,.0f} | {r['cpu']:,.0f} | {r['redis']:,.0f} | "
                  f"{r['client']:.0f}% | {r['failures']} | {r['p50']} / {r['p99']} | {r['note'].replace(':', ' ')} |")
    targets(ratios, l_kib)


def targets(ratios, l_kib):
    print()
    print("Issue 29's targets against node oidc-provider, from this run:")
    print()
    print("| target | measured | |")
    print("|---|---|---|")
    rows = [
        ("flow", "full code flow ≥ 1.5× the rate and ≤ 0.7× the CPU per flow",
         lambda rate, cpu: rate >= 1.5 and cpu <= 0.7),
        ("userinfo", "userinfo ≥ 3× the rate", lambda rate, cpu: rate >= 3),
        ("refresh", "refresh grant ≥ 2× the rate", lambda rate, cpu: rate >= 2),
    ]
    for load, text, ok in rows:
        if load in ratios:
            rate, cpu = ratios[load]
            print(f"| {text} | {rate:.2f}× rate, {cpu:.2f}× CPU | {verdict(ok(rate, cpu))} |")
    print(f"| Latchkey's RSS ≤ 64 MiB after these runs | {l_kib / 1024:.1f} MiB | {verdict(l_kib <= 64 * 1024)} |")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        run_line(*sys.argv[2:9])
    elif len(sys.argv) > 1 and sys.argv[1] == "table":
        args = sys.argv[2:]
        rss = args[args.index("--rss") + 1:args.index("--rss") + 5]
        context = args[args.index("--context") + 1:]
        table(args[0], rss, context)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
