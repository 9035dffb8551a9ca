#!/bin/bash
# Packs what bench/run.py needs on another x86-64 Linux host that has python3
# but none of this project's packages (a lent many-CPU machine, see
# BENCHMARKS.md): the stripped static binaries, the benchmark's BPF objects,
# and bpftool and iperf3 with their shared libraries. The static binaries are
# about 70 MB each stripped, over what a lent machine's copy of the tree may
# carry (64 MiB), so the bundle is also packed as .build/bench-bundle.tar.xz
# (28 MB; 44 MB with a baseline), which python3 alone unpacks there:
#   python3 -c "import tarfile; tarfile.open('.build/bench-bundle.tar.xz').extractall('/tmp')"
#   bash /tmp/bench-bundle/run.sh    # SECTIONS, ROUNDS, COUNT, SHAPES as in bench/run.py
# BASELINE=path/to/another/build/sockaff (here, when packing) carries a second
# build, whose scrape the queries section then measures beside this one's.
# The JSON lands in $OUT (or the current directory); bench/render.py renders it.
set -euo pipefail
dest=.build/bench-bundle
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/objects"
strip -o "$dest/bin/sockaff" .build/release/sockaff
strip -o "$dest/bin/sockaff-bench" .build/release/sockaff-bench
if [ -n "${BASELINE:-}" ]; then strip -o "$dest/bin/sockaff-baseline" "$BASELINE"; fi
cp .build/bench/*.bpf.o "$dest/objects/"
cp bench/run.py "$dest/"
for tool in /usr/sbin/bpftool /usr/bin/iperf3; do
	name=$(basename "$tool")
	cp "$tool" "$dest/lib/$name.real"
	# Its libraries, but not the C library and loader of the host it runs on.
	ldd "$tool" | awk '/=> \// {print $3}' | grep -v -E '/(libc|libm|ld-linux[^/]*)\.so' |
		xargs -r -I{} cp -L {} "$dest/lib/"
	printf '#!/bin/sh\nd=$(dirname "$(readlink -f "$0")")/../lib\nLD_LIBRARY_PATH=$d exec "$d/%s.real" "$@"\n' \
		"$name" >"$dest/bin/$name"
	chmod +x "$dest/bin/$name"
done
cat >"$dest/run.sh" <<'RUN'
#!/bin/bash
# The machine's facts, then bench/run.py's sections; bench exit status last.
set -u
D=$(cd "$(dirname "$0")" && pwd)
export PATH=$D/bin:$PATH
out=${OUT:-.}
echo "== facts"; uname -r; nproc; ls -d /sys/devices/system/node/node* | wc -l
grep -m1 "model name" /proc/cpuinfo; grep -E "cgroup2|bpf" /proc/mounts
echo "== trace"; sockaff trace && sockaff status; sockaff detach
echo "== bench"
PYTHONUNBUFFERED=1 timeout "${LIMIT:-330}" python3 "$D/run.py" --sockaff "$D/bin/sockaff" \
	--bench "$D/bin/sockaff-bench" --objects "$D/objects" --sections "${SECTIONS:-fan_in,per_packet,test_run}" \
	--rounds "${ROUNDS:-4}" --count "${COUNT:-200000}" ${SHAPES:+--shapes "$SHAPES"} \
	$([ -x "$D/bin/sockaff-baseline" ] && echo --baseline-sockaff "$D/bin/sockaff-baseline") \
	--out "$out/results-$(nproc)cpu.json"
status=$?
sockaff detach >/dev/null 2>&1
echo "bench exit $status"
exit $status
RUN
chmod +x "$dest/run.sh"
du -sh "$dest"
tar -C "$(dirname "$dest")" -cf - "$(basename "$dest")" | xz -3 -T0 >"$dest.tar.xz"
du -sh "$dest.tar.xz"
