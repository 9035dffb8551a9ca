#!/usr/bin/env python3
"""Completes the man page that swift-argument-parser's generate-manual made.

generate-manual writes a generic EXIT STATUS (">0 if an error occurs"), drops
every option's default, and has no FILES, EXAMPLES or SEE ALSO. This adds
them from the binary itself, so the page cannot disagree with it:

- EXIT STATUS: the table `sockaff --help` prints (from SockaffError.Kind);
- each option's default and allowed values, from each subcommand's --help;
- FILES, EXAMPLES and SEE ALSO, written here.

    finish.py SOCKAFF_BINARY MAN_PAGE     (rewrites MAN_PAGE in place)
"""
import os
import re
import subprocess
import sys

SUBCOMMANDS = ["trace", "detach", "status", "query", "list", "watch", "export", "serve", "check", "demo"]

FILES = """.Sh FILES
.Bl -tag -width Ds
.It Pa /sys/fs/bpf/sockaff/
The pinned tracer: its links (ingress_link, release_link, closed_link, consumer_link) and maps (records, counts, clock, pool), root's, mode 0600.
.It Pa /run/sockaff.lock
Serializes trace and detach between sockaff processes.
.It Pa /run/sockaff/sys_fs_bpf_sockaff.steering.json
Each NIC's steering (RSS key, table, function, channels, IRQ CPUs) when the tracer attached, which status and the metrics compare with; removed by detach.
.It Pa /lib/systemd/system/sockaff.service , Pa sockaff-metrics.service
Attach at boot (pinned mode), detach on stop; serve the metrics.
.It Pa /etc/default/sockaff
The metrics unit's SOCKAFF_LISTEN and SOCKAFF_SERVE_ARGS (e.g. --web.config.file).
.El
"""

EXAMPLES = """.Sh EXAMPLES
Attach the tracer, then ask where socket fd 5 of process 812 is received:
.Bd -literal -offset indent
sockaff trace
sockaff query --pid 812 --fd 5
.Ed
.Pp
Before any packet, what RSS will do with a connected socket:
.Bd -literal -offset indent
sockaff query --pid 812 --fd 5 --predict
.Ed
.Pp
Every traced socket received on another NUMA node than where it is read:
.Bd -literal -offset indent
sockaff list --mismatch
.Ed
.Pp
Metrics for node_exporter's textfile collector, from a timer:
.Bd -literal -offset indent
sockaff export --textfile /var/lib/prometheus/node-exporter
.Ed
.Pp
Metrics for a fleet's Prometheus, over TLS with basic auth (the exporter toolkit's web config):
.Bd -literal -offset indent
sockaff serve --listen 0.0.0.0:9977 --web.config.file /etc/sockaff/web.yml
.Ed
"""

SEE_ALSO = """.Sh SEE ALSO
.Xr bpftool 8 ,
.Xr ethtool 8 ,
.Xr ss 8 ,
.Xr socket 7
"""


def help_text(binary, *arguments):
    environment = dict(os.environ, COLUMNS="10000")
    return subprocess.run([binary, *arguments, "--help"], capture_output=True, text=True, env=environment,
                          check=True).stdout


def exit_statuses(binary):
    text = help_text(binary)
    match = re.search(r"Exit statuses: (.*?)\.\s*$", text, re.M)
    if not match:
        sys.exit("finish.py: no 'Exit statuses:' paragraph in sockaff --help")
    return re.findall(r"(\d+) ([^,]+)", match.group(1))


def defaults(binary):
    """Description text -> its '(default: ...)' or '(values: ...)' note."""
    notes = {}
    for subcommand in SUBCOMMANDS:
        for line in help_text(binary, subcommand).splitlines():
            match = re.search(r"^\s*(?:-\S.*?\s{2,})?(\S.*?) (\((?:values|default): [^)]*\))$", line)
            if match:
                notes[match.group(1)] = match.group(2)
    return notes


def main(binary, page):
    text = open(page, encoding="utf-8").read()
    statuses = exit_statuses(binary)
    table = ".Bl -tag -width 4n -compact\n" + "".join(f".It {status}\n{words}.\n" for status, words in statuses) + ".El\n"
    text, replaced = re.subn(r'\.Sh "EXIT STATUS"\n(?:\.Ex -std[^\n]*\n?)?', '.Sh "EXIT STATUS"\n' + table, text)
    if replaced != 1:
        sys.exit("finish.py: no EXIT STATUS section to complete")
    notes = defaults(binary)
    lines = [line + " " + notes[line] if line in notes else line for line in text.split("\n")]
    text = "\n".join(lines)
    text = text.rstrip("\n") + "\n" + FILES + EXAMPLES + SEE_ALSO
    open(page, "w", encoding="utf-8").write(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
