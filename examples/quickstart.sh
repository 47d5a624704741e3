#!/usr/bin/env bash
# devloop quickstart: installs and starts what devloop needs on Debian/Ubuntu (Docker, busybox-static), builds
# devloop, then builds the `hello` example twice (the second run is a cache hit) and renders its manifests with
# the built image in them.
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/services

# The example images are FROM scratch with Debian's static busybox: nothing is pulled from any registry.
for example in examples/hello examples/shop; do
  mkdir -p "$example/bin"
  cp /bin/busybox "$example/bin/busybox"
done

cargo build --release --locked
devloop=./target/release/devloop

echo "== devloop build (first run builds)" >&2
$devloop build -f examples/hello/devloop.yaml
echo "== devloop build (nothing changed: cached)" >&2
$devloop build -f examples/hello/devloop.yaml
echo "== devloop render (the objects devloop would apply)" >&2
$devloop render -f examples/hello/devloop.yaml
