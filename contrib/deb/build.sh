#!/usr/bin/env bash
# Builds sockaff's Debian packages into .build/deb, from `make install` into
# Debian's places (the binary, man page, completions and units; the library
# under the multiarch directory; units under /lib/systemd/system):
#   sockaff_V_ARCH.deb         the tool (linked against Debian's libbpf, libelf,
#                              zlib, libnuma, libnl), man page, completions, units
#   libsockaff1_V_ARCH.deb     libsockaff.so.1, the C API
#   libsockaff-dev_V_ARCH.deb  sockaff.h, libsockaff.so and sockaff.pc
# A native package (no Debian revision): `sockaff --version` prints V.
# Usage: contrib/deb/build.sh VERSION (the Makefile's `make deb` passes it).
# DEB_MAINTAINER="Name <address>" sets Maintainer and the changelog's signer.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:?usage: build.sh VERSION}
here=contrib/deb
changelog_version=$(sed -n '1s/^sockaff (\([^)]*\)).*/\1/p' "$here/changelog")
if [ "$changelog_version" != "$version" ]; then
  echo "build.sh: $here/changelog's first entry is $changelog_version, the source says $version: add an entry" >&2
  exit 1
fi
maintainer=${DEB_MAINTAINER:-sockaff developers <sockaff@localhost>}
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
out=$PWD/.build/deb
rm -rf "$out"
mkdir -p "$out"
stage=$out/stage
make --no-print-directory install DESTDIR="$stage" SOCKAFF_BINARY=.build-capi/release/sockaff \
  PREFIX=/usr LIBDIR="/usr/lib/$multiarch" \
  UNITDIR=/lib/systemd/system ZSHCOMPDIR=/usr/share/zsh/vendor-completions >"$out/install.log" 2>&1 ||
  { tail -n 20 "$out/install.log" >&2; exit 1; }

# take PACKAGE PATH...: moves staged paths into the package's tree.
take() {
  local package=$1 path
  shift
  for path in "$@"; do
    mkdir -p "$out/$package/$(dirname "$path")"
    mv "$stage/$path" "$out/$package/$path"
  done
}
take sockaff usr/bin/sockaff usr/share/man/man1/sockaff.1 usr/share/bash-completion/completions/sockaff \
  usr/share/zsh/vendor-completions/_sockaff usr/share/fish/vendor_completions.d/sockaff.fish \
  lib/systemd/system/sockaff.service lib/systemd/system/sockaff-metrics.service
take libsockaff1 "usr/lib/$multiarch/libsockaff.so.1"
take libsockaff-dev "usr/lib/$multiarch/libsockaff.so" "usr/lib/$multiarch/pkgconfig/sockaff.pc" usr/include/sockaff.h
left=$(cd "$stage" && find . -type f -o -type l)
if [ -n "$left" ]; then
  echo "build.sh: make install wrote files no package takes: $left" >&2
  exit 1
fi
rm -rf "$stage"

strip --strip-unneeded --remove-section=.comment --remove-section=.note "$out/sockaff/usr/bin/sockaff" \
  "$out/libsockaff1/usr/lib/$multiarch/libsockaff.so.1"
gzip -9n "$out/sockaff/usr/share/man/man1/sockaff.1"
# bash sources completions; the generator's "#!/bin/bash" line is noise there.
sed -i '1{/^#!/d}' "$out/sockaff/usr/share/bash-completion/completions/sockaff"

# Run-time dependencies, as dpkg-shlibdeps finds them (it wants a
# debian/control to read, so it runs in a scratch directory).
shlibs_dir=$(mktemp -d)
trap 'rm -rf "$shlibs_dir"' EXIT
mkdir "$shlibs_dir/debian"
printf 'Source: sockaff\n\nPackage: sockaff\nArchitecture: any\n' >"$shlibs_dir/debian/control"
shlibs_depends() { # shlibs_depends BINARY
  (cd "$shlibs_dir" && dpkg-shlibdeps -O "$1" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
}
sockaff_depends=$(shlibs_depends "$out/sockaff/usr/bin/sockaff")
library_depends=$(shlibs_depends "$out/libsockaff1/usr/lib/$multiarch/libsockaff.so.1")

description_sockaff="which CPU, RX queue and NUMA node receive a socket's packets
 sockaff answers, for any process and without changing it, which CPU, RX
 queue, IRQ and NUMA node process the packets a socket receives, and whether
 its threads read them there: Linux's counterpart of Windows'
 SIO_QUERY_RSS_PROCESSOR_INFO. A BPF program on the receive path (cgroup_skb
 ingress on the root cgroup v2) records per socket the CPUs that processed
 its packets; the sockaff command queries, lists, watches and exports them as
 Prometheus metrics, and predicts the RSS queue and CPU of a socket before its
 first packet from the NIC's RSS key and indirection table.
 .
 The systemd units are installed but not enabled."
description_lib="C library for sockaff's socket receive-CPU queries
 libsockaff answers sockaff_query_rss_processor_info(), with the contract of
 Windows' SIO_QUERY_RSS_PROCESSOR_INFO: the processor and NUMA node that
 receive a socket's packets, from sockaff's tracer or from the kernel, and
 sockaff_query_rss_scalability_info()."
description_dev="C header and pkg-config file for libsockaff
 sockaff.h declares libsockaff's calls (sockaff_query_rss_processor_info and
 sockaff_query_rss_scalability_info); sockaff.pc gives their flags."

# package NAME SECTION DEPENDS DESCRIPTION: writes DEBIAN/, then the .deb.
package() {
  local name=$1 section=$2 depends=$3 description=$4 root=$out/$1
  local doc=$root/usr/share/doc/$name
  install -D -m 0644 "$here/copyright" "$doc/copyright"
  sed "s|^ -- [^>]*>| -- $maintainer|" "$here/changelog" | gzip -9n >"$doc/changelog.gz"
  chmod 0644 "$doc/changelog.gz"
  if [ -f "$here/$name.lintian-overrides" ]; then
    install -D -m 0644 "$here/$name.lintian-overrides" "$root/usr/share/lintian/overrides/$name"
  fi
  find "$root" -type d -exec chmod 0755 {} +
  mkdir -p "$root/DEBIAN"
  local script
  for script in postinst prerm postrm; do
    [ -f "$here/$name.$script" ] && install -m 0755 "$here/$name.$script" "$root/DEBIAN/$script"
  done
  [ -f "$here/$name.triggers" ] && install -m 0644 "$here/$name.triggers" "$root/DEBIAN/triggers"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$root/DEBIAN/md5sums"
  local size
  size=$(du -s -k --apparent-size --exclude=DEBIAN "$root" | cut -f1)
  {
    echo "Package: $name"
    echo "Source: sockaff"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    [ -n "$depends" ] && echo "Depends: $depends"
    echo "Section: $section"
    echo "Priority: optional"
    echo "Description: $description"
  } >"$root/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${version}_$arch.deb" >/dev/null
  rm -rf "$root"
  echo "$out/${name}_${version}_$arch.deb"
}

echo "libsockaff 1 libsockaff1 (>= $version)" >"$out/shlibs"
package sockaff net "$sockaff_depends" "$description_sockaff"
mkdir -p "$out/libsockaff1/DEBIAN"
install -m 0644 "$out/shlibs" "$out/libsockaff1/DEBIAN/shlibs"
rm "$out/shlibs"
package libsockaff1 libs "$library_depends" "$description_lib"
package libsockaff-dev libdevel "libsockaff1 (= $version)" "$description_dev"
