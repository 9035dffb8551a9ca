#!/usr/bin/env python3
"""Renders what bench/run.py measured (its JSON file) as Markdown: the tables
and the method of each section, every ratio computed here from the raw
per-round values. Prints it, or with --write replaces the part of a Markdown
file between `<!-- MARKER:begin -->` and `<!-- MARKER:end -->` (made at the
end of the file when absent).

  python3 bench/render.py bench/results.json --write BENCHMARKS.md
  python3 bench/render.py bench/results-16cpu/*.json --write BENCHMARKS.md --marker results-16cpu
"""
import argparse
import json
import os
import statistics
import sys


def summary(values):
    """min / median / max, one decimal."""
    if not values:
        return "n/a"
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def spread(values, digits=2):
    """median (min-max)."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratio_spread(values):
    """median (min-max) of ratios to the empty program: 1.52x (1.48-1.60)."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def ratios(numerators, denominators):
    return [n / d for n, d in zip(numerators, denominators)]


def by_order(ratio_list, empty_first):
    """The ratio's median with the empty program attached first / sockaff
    first: the program that runs first pays more."""
    return " / ".join(
        f"{statistics.median(by):.2f}x" if by else "n/a"
        for by in ([x for x, first in zip(ratio_list, empty_first) if first == want] for want in (True, False)))


def read_ratio(row):
    """sockaff_consume over the empty tp_btf program beside it, per round."""
    if not row.get("empty_read_ns"):
        return "n/a"
    r = ratios(row["consume_ns"], row["empty_read_ns"])
    return f"**{statistics.median(r):.2f}x** ({min(r):.2f}-{max(r):.2f})"


def per_packet(s):
    interleaved = (" Each row's rounds are interleaved with the other rows' (round 1 of every row, then round 2, "
                   "...), so the rows can be compared with each other too." if s.get("interleaved") else "")
    lines = [f"Both programs attached at once (same packets), attach order alternating, {s['rounds']} rounds "
             f"of {s['seconds']} s.{interleaved} ns per run = run_time_ns / run_cnt delta of each program. On the read "
             "side the same: sockaff's read program (`sockaff_consume`, or `sockaff_sampled` with "
             "`--sampled-reads`) beside an empty `tp_btf/sock_recv_length` program (bench/bpf/empty_read.bpf.c, "
             "held by `sockaff-bench hold`), in the same order as the ingress pair. The lookup floor "
             "(`bench/bpf/lookup_floor.bpf.c`: one socket storage lookup per packet, nothing written) beside the "
             "empty program in rounds of its own on the same traffic, where measured.", "",
             "| traffic | empty ns/pkt min/med/max | sockaff ns/pkt min/med/max | ratio median (min-max) "
             "| ratio median, empty attached first / sockaff first | lookup floor ÷ empty "
             "| reads: sockaff's read program ns/read "
             "| reads: empty tp_btf ns/read | read ratio median (min-max) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in s["rows"]:
        r = ratios(row["sockaff_ns"], row["empty_ns"])
        orders = by_order(r, row["empty_first"])
        floor = ratio_spread(ratios(row["floor_ns"], row["floor_empty_ns"])) if row.get("floor_ns") else "n/a"
        lines.append(f"| {row['traffic']} | {summary(row['empty_ns'])} | {summary(row['sockaff_ns'])} | "
                     f"**{statistics.median(r):.2f}x** ({min(r):.2f}-{max(r):.2f}) | {orders} | {floor} | "
                     f"{summary(row['consume_ns'])} | {summary(row.get('empty_read_ns', []))} | "
                     f"{read_ratio(row)} |")
    return "1. Per-packet cost in real traffic (bpf_stats)", lines


def test_run(s):
    ratio = statistics.median(s["sockaff_ns"]) / statistics.median(s["empty_ns"])
    return "2. Per-invocation cost (BPF_PROG_TEST_RUN)", [
        f"{s['rounds']} alternating rounds of {s['repeats']:,} runs, a separately loaded copy (never the pinned "
        "maps). The test skb's socket is the same across repeats, so this is the update path.", "",
        "| program | ns/run min/med/max |", "| --- | --- |",
        f"| empty | {summary(s['empty_ns'])} |",
        f"| sockaff_ingress | {summary(s['sockaff_ns'])} |",
        f"| ratio | **{ratio:.2f}x** |"]


def throughput(s):
    bulk, udp = s["tcp_bulk"], s["udp_small"]
    pairs = ratios(bulk["with_gbps"], bulk["without_gbps"])
    lines = [f"TCP bulk over loopback (iperf3, {bulk['seconds']} s), {bulk['pairs']} alternating pairs:", "",
             "| | Gbit/s min/med/max |", "| --- | --- |",
             f"| no tracer | {summary(bulk['without_gbps'])} |",
             f"| sockaff | {summary(bulk['with_gbps'])} |",
             f"| ratio (median of pairs) | **{spread(pairs, 3)}** |",
             "| sockaff's programs' share of the busy CPU time while traced (bpf_stats run time / "
             f"/proc/stat busy time) | {summary([100 * x for x in bulk['sockaff_share']])} % |",
             f"| the empty program's share, measured the same way ({bulk['pairs']} runs alone) | "
             f"{summary([100 * x for x in bulk['empty_share']])} % |", ""]
    kpps = udp["kpps"]
    lines += [f"UDP 64 B received packets per second (iperf3 unlimited, {udp['seconds']} s), {udp['triples']} "
              "triples, order rotating:", "", "| | kpps min/med/max |", "| --- | --- |"]
    lines += [f"| {kind} | {summary(kpps[kind])} |" for kind in ("none", "empty", "sockaff")]
    lines += [f"| sockaff / empty | **{spread(ratios(kpps['sockaff'], kpps['empty']), 3)}** |",
              f"| sockaff / none | {spread(ratios(kpps['sockaff'], kpps['none']), 3)} |",
              f"| empty / none | {spread(ratios(kpps['empty'], kpps['none']), 3)} |",
              "| sockaff's programs' share of the busy CPU time while traced | "
              f"{summary([100 * x for x in udp['sockaff_share']])} % |"]
    cpu = udp.get("cpu_ns")
    if cpu and cpu["empty"]:
        lines += ["", "The same triples as CPU time: the host's busy time (/proc/stat, every CPU, sender and "
                  "receiver both here) per datagram received, which a CPU-bound receiver's throughput is the "
                  "inverse of. Within 3% of the empty program means a ratio at most 1.03, decided when the "
                  "spread of the per-triple ratios is narrower than that:", "",
                  "| | busy CPU ns per datagram min/med/max |", "| --- | --- |"]
        lines += [f"| {kind} | {summary(cpu[kind])} |" for kind in ("none", "empty", "sockaff")]
        lines += [f"| sockaff / empty | **{spread(ratios(cpu['sockaff'], cpu['empty']), 3)}** |",
                  f"| empty / none | {spread(ratios(cpu['empty'], cpu['none']), 3)} |"]
    if udp.get("empty_share"):
        extra = [100 * (s - e) for s, e in zip(udp["sockaff_share"], udp["empty_share"])]
        lines += ["", "What the programs themselves take, exact (bpf_stats run time over the host's busy time in "
                  "the same run): an upper bound of what they take from a CPU-bound receiver's throughput, "
                  "leaving out only their indirect cost (cache lines they evict).", "",
                  "| | share of busy CPU time, % min/med/max |", "| --- | --- |",
                  f"| sockaff's programs (ingress and reads) | {summary([100 * x for x in udp['sockaff_share']])} |",
                  f"| the empty program | {summary([100 * x for x in udp['empty_share']])} |",
                  f"| sockaff minus empty, per triple | **{summary(extra)}** |"]
    return "3. Throughput impact", lines


def peer(s):
    title = "4. Peer: a bpftrace script"
    if "skipped" in s:
        return title, [f"{s['skipped']}: skipped."]
    if "failed" in s:
        return title, [f"bpftrace peer failed: {s['failed']}"]
    r = ratios(s["peer_ns"], s["sockaff_ns"])
    return title, [
        f"`bpftrace -e '{s['script']}'` (Debian's bpftrace), alternating with sockaff, {s['rounds']} rounds "
        f"of UDP 64 B for {s['seconds']} s; ns per event from bpf_stats.", "",
        "| | ns/pkt min/med/max | kpps min/med/max |", "| --- | --- | --- |",
        f"| bpftrace script | {summary(s['peer_ns'])} | {summary(s['peer_kpps'])} |",
        f"| sockaff | {summary(s['sockaff_ns'])} | {summary(s['sockaff_kpps'])} |",
        f"| bpftrace / sockaff | **{statistics.median(r):.2f}x** the cost per packet | |"]


def queries(s):
    lines = ["| measurement | result |", "| --- | --- |",
             f"| query through the library (median / p99) | {s['library_us']['median']:.1f} / "
             f"{s['library_us']['p99']:.1f} µs |",
             f"| `sockaff query` as a whole process, min/med/max | {summary(s['process_ms'])} ms "
             f"(`/bin/true`: {statistics.median(s['true_ms']):.2f} ms) |"]
    for listing in s["lists"]:
        lines.append(
            f"| `sockaff list` (host) with {listing['sockets']:,} live traced sockets in {listing['processes']} "
            f"processes ({listing['listed']:,} listed), median of {len(listing['json_s'])} | "
            f"{statistics.median(listing['json_s']):.2f} s JSON, {statistics.median(listing['table_s']):.2f} s "
            f"table; peak RSS {listing['peak_rss_kib'] / 1024:.0f} MiB; JSON encoding "
            f"{listing['encoding_us_per_record']:.2f} µs per record |")
        scrape = listing.get("scrape")
        if scrape and "skipped" in scrape.get("iterator", {}):
            procfs = scrape["procfs"]
            lines.append(
                f"| a scrape of `sockaff serve` with those sockets, CPU ms min/med/max (wall ms median), "
                f"{len(procfs['cpu_ms'])} each | procfs {summary(procfs['cpu_ms'])} "
                f"({statistics.median(procfs['wall_ms']):.0f}); the iterator skipped: "
                f"{scrape['iterator']['skipped']} |")
        elif scrape:
            iterator, procfs = scrape["iterator"], scrape["procfs"]
            lines.append(
                f"| a scrape of `sockaff serve` with those sockets, CPU ms min/med/max (wall ms median), "
                f"{len(iterator['cpu_ms'])} each | iterator {summary(iterator['cpu_ms'])} "
                f"({statistics.median(iterator['wall_ms']):.0f}); procfs {summary(procfs['cpu_ms'])} "
                f"({statistics.median(procfs['wall_ms']):.0f}); the iterator's CPU **"
                f"{statistics.median(procfs['cpu_ms']) / max(statistics.median(iterator['cpu_ms']), 0.001):.1f}x** "
                f"less (medians) |")
            stats = scrape.get("iterator_bpf_stats")
            if stats:
                lines.append(
                    f"| ... the iterator with `kernel.bpf_stats_enabled=1` (above: 0, the default), CPU ms "
                    f"min/med/max | {summary(stats['cpu_ms'])}: **"
                    f"{statistics.median(stats['cpu_ms']) / max(statistics.median(iterator['cpu_ms']), 0.001):.2f}x** "
                    f"the default's |")
        procfs, census, tls = (scrape or {}).get("procfs"), (scrape or {}).get("census"), (scrape or {}).get("procfs_tls")
        if procfs and census:
            lines.append(
                f"| ... a census (`serve --source kernel`: every socket's own SO_INCOMING_CPU and NAPI, no "
                f"tracer read) beside procfs, CPU ms min/med/max | census {summary(census['cpu_ms'])} "
                f"({statistics.median(census['wall_ms']):.0f}): **"
                f"{statistics.median(census['cpu_ms']) / max(statistics.median(procfs['cpu_ms']), 0.001):.2f}x** "
                f"procfs's |")
        per_socket = (scrape or {}).get("census_per_socket")
        if census and per_socket:
            readers = (scrape or {}).get("census_reader") or {}
            one_pass = ", ".join(f"{name} {state}" for name, state in readers.items()) or "readers not recorded"
            lines.append(
                f"| ... the census in one pass ({one_pass}) beside socket by socket (`SOCKAFF_CENSUS=per-socket`: "
                f"pidfd_getfd and its options), alternating, CPU ms min/med/max | one pass "
                f"{summary(census['cpu_ms'])}, socket by socket {summary(per_socket['cpu_ms'])}: **"
                f"{statistics.median(census['cpu_ms']) / max(statistics.median(per_socket['cpu_ms']), 0.001):.2f}x** |")
        if procfs and tls:
            lines.append(
                f"| ... procfs over TLS with basic auth (`--web.config.file`, a new connection per scrape), CPU ms "
                f"min/med/max | {summary(tls['cpu_ms'])} ({statistics.median(tls['wall_ms']):.0f}): **"
                f"{statistics.median(tls['cpu_ms']) / max(statistics.median(procfs['cpu_ms']), 0.001):.2f}x** "
                f"plain HTTP's |")
        for source in ("iterator", "procfs") if scrape else ():
            this, baseline = scrape.get(f"{source}_this"), scrape.get(f"{source}_baseline")
            if this and baseline:
                lines.append(
                    f"| ... {source}'s scrape, this build beside a baseline build (`--baseline-sockaff`), alternating, "
                    f"{len(this['cpu_ms'])} each, CPU ms min/med/max | this {summary(this['cpu_ms'])}; baseline "
                    f"{summary(baseline['cpu_ms'])}: this ÷ baseline **"
                    f"{statistics.median(this['cpu_ms']) / max(statistics.median(baseline['cpu_ms']), 0.001):.2f}** "
                    f"(medians) |")
    return "5. Queries", lines


MEMORY_LABELS = {
    "sockaff": "sockaff trace (records + read counters)",
    "sockaff_no_locality": "sockaff trace --no-locality (records only)",
    "storage_floor": "floor: socket storage of 8 bytes (`bench/bpf/storage_floor.bpf.c`)",
}


def memory(s):
    lines = [f"{s['sockets']:,} UDP sockets, each sent one datagram (read back) without the tracer, then again "
             "with it; the growth of unreclaimable slab and vmalloc (/proc/meminfo SUnreclaim + VmallocUsed) "
             "divided by the sockets.", "", "| tracer | growth | bytes per tracked socket |", "| --- | --- | --- |"]
    for row in s["rows"]:
        lines.append(f"| {MEMORY_LABELS[row['tracer']]} | {row['growth_kib']:,} KiB | "
                     f"**{row['growth_kib'] * 1024 / s['sockets']:.0f}** |")
    return "6. Kernel memory per tracked socket", lines


FAN_IN_SHAPES = {
    "one_udp_socket": "every CPU into one UDP socket",
    "udp_socket_per_sender": "one UDP socket per sender",
    "one_tcp_listener": "every CPU connecting to one TCP listener ({connections:,} per CPU; counted: the "
                        "listener's packets, delivered: 2 × PassiveOpens)",
}


def fan_in(s):
    lines = [f"One sender thread per CPU ({s['cpus']}), each pinned, {s['datagrams_per_cpu']:,} × 64 B datagrams "
             "to 127.0.0.1 (on loopback a datagram is received in its sender's softirq, on the sender's CPU, as "
             f"RSS queues deliver on theirs). {s['rounds']} rounds per row, order alternating. ns/pkt: sockaff "
             "and the empty program attached at once (bpf_stats). Counted / delivered: the sockets' traced "
             "packets over the UDP MIB's InDatagrams + RcvbufErrors + MemErrors. Packets (or connections) per "
             "second: sockaff alone vs the empty program alone, alternating. The TCP row's ns/pkt covers every "
             "packet of the burst (the listener's SYNs and ACKs, and the connections' own); its counted packets "
             "may exceed 2 × PassiveOpens by the few segments that reach the listener while connections are "
             "torn down (answered with a reset: the kernel's OutRsts).", "",
             "The lookup floor is `bench/bpf/lookup_floor.bpf.c` beside the empty program in rounds of its own, "
             "the same way: one socket storage lookup per packet, nothing written, what any per-socket tracer "
             "pays (under fan-in the kernel's own writes to the socket bounce its lines between the receiving "
             "CPUs, and every reader of the socket pays for the misses).", "",
             "| shape | empty ns/pkt | sockaff ns/pkt | ratio median (min-max) | ratio, empty first / sockaff "
             "first | lookup floor ÷ empty | counted / delivered | k per second sockaff / empty (median) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in s["rows"]:
        r = ratios(row["sockaff_ns"], row["empty_ns"])
        ours, empty = statistics.median(row["kps"]["sockaff"]), statistics.median(row["kps"]["empty"])
        shape = FAN_IN_SHAPES[row["shape"]].format(connections=s["connections_per_cpu"])
        floor = "n/a"
        if row.get("floor_ns"):
            floor = ratio_spread(ratios(row["floor_ns"], row["floor_empty_ns"]))
        lines.append(f"| {shape} | {summary(row['empty_ns'])} | {summary(row['sockaff_ns'])} | "
                     f"**{statistics.median(r):.2f}x** ({min(r):.2f}-{max(r):.2f}) | "
                     f"{by_order(r, row.get('empty_first', []))} | {floor} | "
                     f"{row['counted']:,} / {row['delivered']:,} "
                     f"(**{row['counted'] / max(row['delivered'], 1):.4f}**) | {ours:.0f} / {empty:.0f} "
                     f"(**{ours / empty:.3f}**) |")
    lines += ["", f"Per-CPU pool (sockets received on more than one CPU): {s['pool_slots']:,} slots × {s['cpus']} "
              f"CPUs × 48 B = {s['pool_bytes'] / 1024:,.0f} KiB of per-CPU memory, allocated at attach (the "
              "default: 16 MiB / (CPUs × 48 B), at most 16,384 slots)."]
    return "7. Fan-in: every CPU into one socket", lines


def beside_baseline(label, row):
    """A table row of section 8: each build's ratio to the empty program
    beside it, and the ratio of the two ratios, round by round."""
    this = ratios(row["this_ns"], row["this_empty_ns"])
    base = ratios(row["baseline_ns"], row["baseline_empty_ns"])
    relative = [a / b for a, b in zip(this, base)]
    return (f"| {label} | {ratio_spread(this)} | {ratio_spread(base)} "
            f"| **{statistics.median(relative):.3f}** ({min(relative):.3f}-{max(relative):.3f}) |")


def baseline(s):
    title = "8. This build beside a baseline build"
    if "skipped" in s:
        return title, [f"Not run: {s['skipped']} (`make bench BASELINE_SOCKAFF=PATH`)."]
    udp, memory = s["udp"], s["memory"]
    lines = [f"Baseline: `{s['baseline']}`. UDP 64 B, one flow: each build beside the empty program in the same "
             f"round (bpf_stats), {s['rounds']} rounds of {s['seconds']} s each, the builds alternating; the "
             "result is the ratio of the two ratios, round by round; the fan-in row the same way. Memory: each build's kernel growth on "
             f"{memory['sockets']:,} fresh UDP sockets (as section 6), alternating.", "",
             "| row | this build | baseline build | this ÷ baseline |", "| --- | --- | --- | --- |",
             beside_baseline("UDP 64 B, one flow: ns/pkt ÷ empty's, median (min-max)", udp)]
    fan = s.get("fan_in")
    if fan:
        lines.append(beside_baseline(f"every CPU ({fan['cpus']}) into one UDP socket, {fan['datagrams_per_cpu']:,} "
                                     "datagrams per CPU a round (section 7's first row): ns/pkt ÷ empty's", fan))
    this_b = [k * 1024 / memory["sockets"] for k in memory["this_kib"]]
    base_b = [k * 1024 / memory["sockets"] for k in memory["baseline_kib"]]
    lines.append(f"| kernel memory per tracked socket, bytes (each run) | "
                 f"{', '.join(f'{b:.0f}' for b in this_b)} | {', '.join(f'{b:.0f}' for b in base_b)} | "
                 f"**{statistics.median(this_b) / max(statistics.median(base_b), 1):.3f}** |")
    return title, lines


RENDERERS = {"per_packet": per_packet, "test_run": test_run, "throughput": throughput, "peer": peer,
             "queries": queries, "memory": memory, "fan_in": fan_in, "baseline": baseline}


def render(results, level=2):
    machine = results["machine"]
    nodes = machine.get("numa_nodes", 1)
    lines = [f"Kernel {machine['kernel']}, {machine['cpu']}, {machine['cpus']} CPUs, {nodes} NUMA "
             f"node{'s' if nodes != 1 else ''}; {results['started']}{' (quick)' if results['quick'] else ''}.", ""]
    for name, section in results["sections"].items():
        title, body = RENDERERS[name](section)
        lines += [f"{'#' * level} {title}", ""] + body + [""]
    return "\n".join(lines)


def replace_between(path, marker, text):
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if begin not in old:
        old = old.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = old.split(begin, 1)
    _, tail = rest.split(end, 1)
    partial = path + ".partial"
    with open(partial, "w") as f:
        f.write(head + begin + "\n" + text + end + tail)
    os.replace(partial, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="JSON files bench/run.py wrote, rendered in turn")
    parser.add_argument("--write", help="the Markdown file whose marked part to replace (default: print)")
    parser.add_argument("--marker", default="results", help="the marker's name (default: results)")
    parser.add_argument("--level", type=int, default=2, help="Markdown heading level of the sections (default 2)")
    args = parser.parse_args()
    texts = []
    for path in args.results:
        try:
            with open(path) as f:
                texts.append(render(json.load(f), args.level))
        except (OSError, ValueError, KeyError) as error:
            sys.exit(f"render: {path}: {error!r}")
    text = "\n".join(texts)
    if args.write:
        replace_between(args.write, args.marker, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
