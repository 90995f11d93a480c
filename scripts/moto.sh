#!/usr/bin/env bash
# Install, start and stop the moto server that contain's demo and tests run against.
#
# Usage: scripts/moto.sh install | start | stop | running | url
# The server listens on 127.0.0.1 only. MOTO_PORT sets the port (default 5055); each port has
# its own server, pid file and log under .moto/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
state="$root/.moto"
port="${MOTO_PORT:-5055}"
moto_version="5.2.5"
pid_file="$state/moto-$port.pid"
log_file="$state/moto-$port.log"

install() {
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
        return 0
    fi
    echo "Installing moto[server]==$moto_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
}

start() {
    install
    mkdir -p "$state"
    if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        echo "moto is already running (pid $(cat "$pid_file")) on 127.0.0.1:$port" >&2
        return 0
    fi
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
        echo "another process already listens on 127.0.0.1:$port: stop it or set MOTO_PORT" >&2
        return 1
    fi
    "$venv/bin/python" "$root/scripts/moto_server.py" --port "$port" >"$log_file" 2>&1 &
    echo $! >"$pid_file"
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
            echo "moto $moto_version is listening on 127.0.0.1:$port (log: $log_file)" >&2
            return 0
        fi
        sleep 0.2
    done
    echo "moto did not start within 20 s; its log follows:" >&2
    cat "$log_file" >&2
    return 1
}

# Stops the server and waits until it has exited, so the port is free for the next start.
stop() {
    if [ ! -f "$pid_file" ]; then
        return 0
    fi
    pid=$(cat "$pid_file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "moto (pid $pid) did not stop within 5 s: killing it" >&2
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
}

# Succeeds when this script's server for the port is running.
running() {
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    running) running ;;
    url) echo "http://127.0.0.1:$port" ;;
    *) echo "usage: $0 install|start|stop|running|url" >&2; exit 2 ;;
esac
