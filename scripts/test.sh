#!/usr/bin/env bash
# The whole test suite: formatting, lints and every test, on SQLite and on a
# real PostgreSQL that the tests start. Installs what the tests need first,
# so a missing tool fails or gets installed here, never skips a test.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v git >/dev/null 2>&1 || missing+=(git)
# `kubectl kustomize` checks that the cluster repositories build as Kustomizations.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
# Single sign-on is tested against npm's oidc-provider, run by node.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The portal is tested in headless Chromium through chromedriver.
# (fonts-liberation: without any font Chromium's pages have no text metrics.)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

conformance="${HEIMDALL_CONFORMANCE_DIR:-$(cd .. && pwd)/shared/conformance}"
if [ ! -d "$conformance" ]; then
  echo "error: the conformance corpus is not at $conformance (set HEIMDALL_CONFORMANCE_DIR)" >&2
  exit 1
fi

# The test OpenID provider's and Backstage catalog client's pinned packages (package-lock.json).
(cd crates/testsupport/oidc && npm ci --no-audit --no-fund --loglevel=error)
(cd crates/testsupport/backstage && npm ci --no-audit --no-fund --loglevel=error)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
