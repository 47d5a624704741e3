#!/usr/bin/env bash
# devloop quickstart: installs and starts what devloop needs on Debian/Ubuntu (Docker, busybox-static), builds
# devloop, then builds the `hello` example twice (the second run is a cache hit), renders its manifests with the
# built image in them, and runs it on the local Docker daemon.
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
echo "== devloop render (the objects devloop would apply to a cluster)" >&2
$devloop render -f examples/hello/devloop.yaml
echo "== devloop run -p docker (no cluster needed: a container on the local daemon)" >&2
$devloop run -f examples/hello/devloop.yaml -p docker
echo "== GET http://127.0.0.1:8080/" >&2
busybox wget -q -O - http://127.0.0.1:8080/
echo "== devloop delete -p docker" >&2
$devloop delete -f examples/hello/devloop.yaml -p docker
echo "next: \`$devloop dev -f examples/hello/devloop.yaml -p docker\`, then edit examples/hello/www/index.html" >&2
