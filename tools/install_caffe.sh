#!/bin/sh
# Install real Caffe (CPU) for the oracle backend, without touching the system.
#
# Debian bookworm has no Caffe; bullseye ships python3-caffe (CPU_ONLY, Python 3.9).
# We let apt resolve and download bullseye's whole dependency closure into a private
# apt state (an empty dpkg status makes apt fetch everything), unpack each .deb into
# one folder, and start python3.9 through that folder's own glibc loader.
#
# Usage: tools/install_caffe.sh DEST        Idempotent: a finished DEST is left alone.
set -eu
DEST=${1:?usage: install_caffe.sh DEST}
[ -e "$DEST/.complete" ] && { echo "caffe: already installed at $DEST"; exit 0; }
APT=${CAFFE_APT_DIR:-$DEST.apt}
STAGE=$DEST.partial
rm -rf "$STAGE"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/state" "$STAGE"
: > "$APT/state/status"
echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main' > "$APT/sources.list"
set -- -oDir::Etc::SourceList="$APT/sources.list" -oDir::Etc::SourceParts=/dev/null \
       -oDir::State="$APT/state" -oDir::State::Lists="$APT/lists" \
       -oDir::State::status="$APT/state/status" -oDir::Cache::Archives="$APT/archives" \
       -oDir::Cache="$APT" -oDebug::NoLocking=1 \
       -oAPT::Install-Recommends=0 -oAPT::Install-Suggests=0
apt-get "$@" -q update
# Name the pthread OpenBLAS explicitly: otherwise apt satisfies libblas.so.3 with the
# reference BLAS and a batch-32 AlexNet forward takes 17 s instead of 1 s.
apt-get "$@" -q -y --download-only install \
    python3-caffe=1.0.0+git20180821.99bd997-8+b2 libopenblas0-pthread
for deb in "$APT"/archives/*.deb; do dpkg-deb -x "$deb" "$STAGE"; done
rm -rf "$STAGE/usr/share/doc" "$STAGE/usr/share/man" "$STAGE/usr/share/locale"
# dpkg-deb runs no maintainer scripts, so no alternatives symlinks exist: every library
# folder (the openblas-pthread one first) is named on the loader's --library-path.
cat > "$STAGE/caffe-python" <<'EOS'
#!/bin/sh
# python3.9 of this folder, with its own glibc loader and libraries; -s -E keep the
# caller's site-packages and PYTHON* variables out.
P=$(dirname "$(readlink -f "$0")")
L=$P/usr/lib/x86_64-linux-gnu
exec "$P/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
  --library-path "$L/openblas-pthread:$P/lib/x86_64-linux-gnu:$L:$P/usr/lib:$P/lib" \
  "$P/usr/bin/python3.9" -s -E "$@"
EOS
chmod +x "$STAGE/caffe-python"
GLOG_minloglevel=2 "$STAGE/caffe-python" -c 'import caffe; caffe.set_mode_cpu(); print("caffe: pycaffe", caffe.__version__, "works")'
touch "$STAGE/.complete"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
[ -n "${CAFFE_APT_DIR:-}" ] || rm -rf "$APT"
