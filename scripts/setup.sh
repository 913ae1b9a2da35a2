#!/usr/bin/env bash
# Citas IVR set-up, for a fresh Debian-like machine, as root.
#
#   scripts/setup.sh demo   install everything, start the Asterisk sandbox and run the IVR
#   scripts/setup.sh test   install everything and run the whole test suite (lint, types,
#                           unit tests, and end-to-end calls through a real Asterisk 22)
#
# Packages come from the machine's own apt and pip configuration: no registry
# host name is written here.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in
  demo|test|install) ;;
  *) echo "usage: $0 demo|test|install" >&2; exit 2 ;;
esac

APT_PACKAGES=(python3 python3-venv python3-dev gcc debootstrap sip-tester espeak-ng sox
              ca-certificates mount coreutils util-linux postgresql chromium chromium-driver
              kamailio docker.io docker-compose)

log() { printf '\n==> %s\n' "$*"; }

install_system() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "system packages already installed"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]}; run this as root (or install them first)" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "not a Debian-like machine (no apt-get); install: ${missing[*]}" >&2
    exit 1
  fi
  log "installing system packages: ${missing[*]}"
  # Debian's kamailio package enables and starts its own service (the stock
  # configuration, SIP on every interface) under systemd: the cluster runs its
  # own Kamailio (docs/cluster.md), so the system one is masked before it exists.
  if [ -d /run/systemd/system ] && [[ " ${missing[*]} " == *" kamailio "* ]]; then
    systemctl mask kamailio.service >/dev/null
  fi
  # Likewise Debian's docker.io starts the system Docker engine (a bridge, firewall
  # rules) and containerd: the compose stack runs its own engine (ivr/sandbox/dockerd.py).
  if [ -d /run/systemd/system ] && [[ " ${missing[*]} " == *" docker.io "* ]]; then
    systemctl mask docker.service docker.socket containerd.service >/dev/null
  fi
  # Without systemd, the same packages' postinst scripts start their SysV services
  # through invoke-rc.d unless a policy-rc.d says no (Debian's policy-rc.d interface,
  # /usr/share/doc/init-system-helpers/README.policy-rc.d): one that refuses every
  # action (exit 101) stands for the install, if the machine has none of its own.
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -d /run/systemd/system ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/setup.sh: no service starts during its install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$own_policy" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
}

install_python() {
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    log "creating the virtualenv (.venv) with $($py --version)"
    "$py" -m venv .venv
  fi
  log "installing the project, its test tools and the benchmark's plotting into .venv"
  .venv/bin/python -m pip install -q -e '.[test,bench]'
}

install_system
install_python

case "$mode" in
  install)
    log "installed; next: .venv/bin/ivr sandbox up && .venv/bin/ivr serve"
    ;;
  demo)
    log "starting the Asterisk sandbox (first run builds it: about a minute)"
    .venv/bin/ivr sandbox up
    cat <<'TXT'

==> The IVR is starting in the foreground (Ctrl-C stops it; `.venv/bin/ivr sandbox down` stops Asterisk).
    In another terminal:
      .venv/bin/ivr call --list          the bundled tester scenarios
      .venv/bin/ivr call smoke           a sipp call that presses 1, with its transcript
      .venv/bin/ivr chat                 chat with Lina (WhatsApp assistant) through the simulator
      .venv/bin/ivr chat --list          the bundled chat scenarios
      http://127.0.0.1:8080/chat         the demo chat page
    Or a softphone (no registration needed, UDP, codec PCMU/PCMA):
      sip:4441234@127.0.0.1:5060         the citas line
      sip:4440001@127.0.0.1:5060         the smoke line
TXT
    exec .venv/bin/ivr serve
    ;;
  test)
    log "the Asterisk sandbox root (built once, cached; about a minute the first time)"
    .venv/bin/ivr sandbox prepare
    # The compose stack's images (docker/README.md), built before the tests so their
    # debootstrap and builds never share the CPU with the e2e calls' real-time audio
    # (cached: seconds when nothing changed). A failure here is tests/e2e/test_compose.py's
    # to report, with the rest of the suite.
    log "the compose stack's images (base roots cached; about 3 minutes the first time)"
    .venv/bin/ivr compose build || log "ivr compose build failed: tests/e2e/test_compose.py will say why"
    log "lint (ruff), types (mypy) and the import contracts (import-linter: pyproject.toml)"
    .venv/bin/ruff check ivr tests
    .venv/bin/mypy
    .venv/bin/lint-imports --no-cache
    log "a throwaway PostgreSQL for the tests that run on both databases"
    pg_dir="$(mktemp -d /tmp/citas-pg.XXXXXX)"
    trap 'scripts/test-postgres.sh stop "$pg_dir"' EXIT
    # A free port unless one is given: a cluster left by an interrupted run must not stop this one.
    pg_port="${CITAS_TEST_PG_PORT:-$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    CITAS_TEST_PG_URL="$(scripts/test-postgres.sh start "$pg_dir" "$pg_port")"
    export CITAS_TEST_PG_URL
    # The e2e suite mostly waits for audio played in real time, so it runs on
    # CITAS_E2E_WORKERS sandboxes at once (pytest-xdist, one test file per worker at
    # a time; docs/testing.md). 1 runs it in this process, as before.
    e2e_workers="${CITAS_E2E_WORKERS:-2}"
    case "$e2e_workers" in
      ''|*[!0-9]*|0) echo "CITAS_E2E_WORKERS=$e2e_workers: give a number of sandboxes, 1 or more" >&2; exit 2 ;;
    esac
    e2e_args=(tests/e2e)
    if [ "$e2e_workers" -gt 1 ]; then
      e2e_args=(-n "$e2e_workers" --dist loadfile tests/e2e)
    fi
    # The unit and console tests on CITAS_UNIT_WORKERS processes (each its own
    # PostgreSQL database, tests/unit/databases.py). Two by default: 19.7 min against
    # 35.3 in one process on a slower 2-core machine (docs/testing.md); 1 runs them
    # in this process, without xdist.
    unit_workers="${CITAS_UNIT_WORKERS:-2}"
    case "$unit_workers" in
      ''|*[!0-9]*|0) echo "CITAS_UNIT_WORKERS=$unit_workers: give a number of processes, 1 or more" >&2; exit 2 ;;
    esac
    unit_args=(--ignore=tests/e2e)
    if [ "$unit_workers" -gt 1 ]; then
      unit_args=(-n "$unit_workers" --dist loadfile --ignore=tests/e2e)
    fi
    status=0
    log "tests: unit and console (SQLite and PostgreSQL, headless Chromium), on $unit_workers process(es)"
    # --durations: the slowest tests in the log, to see what to move where it belongs.
    .venv/bin/python -m pytest -p no:cacheprovider -ra --durations=15 "${unit_args[@]}" || status=$?
    log "tests: end-to-end through the real Asterisk sandbox, on $e2e_workers sandbox(es) at once"
    .venv/bin/python -m pytest -p no:cacheprovider -ra --durations=15 "${e2e_args[@]}" || status=$?
    exit "$status"
    ;;
esac
