#!/usr/bin/env bash
# Builds trustfence_<version>_<arch>.deb into ${DEB_DIR:-build}: the project and every dependency as wheels
# (for each Python in DEB_PYTHONS, plus the building one) under /opt/trustfence/wheels, /usr/bin/tf, the
# logrotate file, and the maintainer scripts in scripts/deb/ (postinst builds the venv offline from the wheels).
# The version is pyproject.toml's. Needs the venv of `make bootstrap` and network access to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=$(realpath -m "${DEB_DIR:-build}")
PYTHONS=${DEB_PYTHONS:-3.12 3.13}

say() { printf 'deb: %s\n' "$*" >&2; }

VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
ARCH=$(dpkg --print-architecture)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tf-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
WHEELS=$ROOT/opt/trustfence/wheels
mkdir -p "$WHEELS" "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/etc/logrotate.d" "$ROOT/usr/share/doc/trustfence"

# the wheel is built from a copy: setuptools writes build/ and *.egg-info next to the sources it builds
mkdir "$WORK/src"
tar -C . --exclude=./.venv --exclude=./build --exclude=./.git --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
  | tar -C "$WORK/src" -xf -
say "wheels for $("$PY" -V) (trustfence $VERSION and its dependencies)"
"$PY" -m pip wheel -q --disable-pip-version-check -c constraints.txt --wheel-dir "$WHEELS" "$WORK/src" 2>"$WORK/pip.log" \
  || { cat "$WORK/pip.log" >&2; exit 2; }
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$WHEELS" \
  "pip==$("$PY" -c 'import pip; print(pip.__version__)')"
own=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
for v in $PYTHONS; do
  [ "$v" = "$own" ] && continue
  say "wheels for Python $v"
  "$PY" -m pip download -q --disable-pip-version-check -c constraints.txt --only-binary=:all: \
    --python-version "$v" --implementation cp --find-links "$WHEELS" -d "$WHEELS" \
    "$WHEELS"/trustfence-"$VERSION"-*.whl 2>"$WORK/pip.log" || { cat "$WORK/pip.log" >&2; exit 2; }
done

ln -s /opt/trustfence/venv/bin/tf "$ROOT/usr/bin/tf"
install -m 644 scripts/deb/logrotate "$ROOT/etc/logrotate.d/trustfence"
printf 'TrustFence %s. License: Apache-2.0.\n' "$VERSION" > "$ROOT/usr/share/doc/trustfence/copyright"
for s in postinst prerm postrm; do
  sed "s/@VERSION@/$VERSION/g" "scripts/deb/$s" > "$ROOT/DEBIAN/$s"
  chmod 755 "$ROOT/DEBIAN/$s"
done
echo /etc/logrotate.d/trustfence > "$ROOT/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/g" -e "s/@ARCH@/$ARCH/g" -e "s/@SIZE@/$size/g" scripts/deb/control.in \
  > "$ROOT/DEBIAN/control"

mkdir -p "$OUT"
deb="$OUT/trustfence_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zzstd --build "$ROOT" "$deb" >/dev/null
say "built $deb ($(du -h "$deb" | cut -f1))"
echo "$deb"
