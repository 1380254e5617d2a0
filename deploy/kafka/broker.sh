#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1, no Docker.
#
#   broker.sh fetch                 jars from Maven Central into deploy/kafka/lib (cached in ~/.m2)
#   broker.sh start [--dir DIR]     format storage, start on free ports, wait until ready,
#                                   print the bootstrap address (also written to DIR/bootstrap)
#   broker.sh stop  [--dir DIR]     SIGTERM, wait, then SIGKILL
#   broker.sh status [--dir DIR]    "running <bootstrap>" (exit 0) or "stopped" (exit 3)
#
# DIR (default deploy/kafka/run) holds everything of one broker: config, data, logs, pid, so
# tests, CI and a developer's shell each run their own. A second `start` on the same DIR keeps
# its data and its ports (clients reconnect to the same address after a broker restart).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lib=$here/lib
java=${JAVA:-java}
heap=${KAFKA_HEAP:-"-Xms256m -Xmx512m"}
ready_timeout=${KAFKA_READY_TIMEOUT:-90}

die() { echo "broker.sh: $*" >&2; exit 1; }

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

fetch() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  local stamp=$lib/.pom.sha256 want
  want=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && compgen -G "$lib/kafka_*.jar" >/dev/null; then
    echo "broker.sh: jars already in $lib" >&2
    return 0
  fi
  local tmp=$lib.tmp
  rm -rf "$tmp"
  echo "broker.sh: fetching Kafka jars from Maven Central (cached in ~/.m2)" >&2
  mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp"
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  echo "broker.sh: $(ls "$lib"/*.jar | wc -l) jars in $lib" >&2
}

free_port() {
  # Bind port 0 and report what the kernel chose; the broker binds it a few seconds later.
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cluster_id() {
  # Kafka's Uuid.randomUuid().toString(): URL-safe base64 of 16 random bytes, no padding,
  # never starting with "-" (saves a JVM start for `StorageTool random-uuid`).
  python3 -c '
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    if not cid.startswith("-"):
        print(cid)
        break'
}

pid_alive() { [ -f "$1/broker.pid" ] && kill -0 "$(cat "$1/broker.pid")" 2>/dev/null; }

render() {  # render TEMPLATE OUT DIR PORT CONTROLLER_PORT
  sed -e "s#@DIR@#$3#g" -e "s#@PORT@#$4#g" -e "s#@CONTROLLER_PORT@#$5#g" "$1" >"$2"
}

start() {
  local dir=$1
  compgen -G "$lib/kafka_*.jar" >/dev/null || die "no jars in $lib: run '$0 fetch' first"
  mkdir -p "$dir/logs" "$dir/data"
  dir=$(cd "$dir" && pwd)
  if pid_alive "$dir"; then
    echo "broker.sh: already running (pid $(cat "$dir/broker.pid")) at $(cat "$dir/bootstrap")" >&2
    cat "$dir/bootstrap"
    return 0
  fi
  local port cport
  if [ -f "$dir/ports" ]; then
    read -r port cport <"$dir/ports"
  else
    port=$(free_port)
    cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    echo "$port $cport" >"$dir/ports"
  fi
  render "$here/server.properties.in" "$dir/server.properties" "$dir" "$port" "$cport"
  render "$here/log4j2.properties.in" "$dir/log4j2.properties" "$dir" "$port" "$cport"
  local logopt=-Dlog4j2.configurationFile=$dir/log4j2.properties
  if [ ! -f "$dir/data/meta.properties" ]; then
    "$java" "$logopt" -cp "$lib/*" kafka.tools.StorageTool format -t "$(cluster_id)" \
      -c "$dir/server.properties" --ignore-formatted >"$dir/logs/format.log" 2>&1 \
      || { cat "$dir/logs/format.log" >&2; die "storage format failed"; }
  fi
  # Ready means a "Kafka Server started" line from *this* run: set the old log aside.
  [ -f "$dir/logs/server.log" ] && mv "$dir/logs/server.log" "$dir/logs/server.log.prev"
  # java as a plain command, so that $! is the JVM itself and not a wrapping shell.
  # shellcheck disable=SC2086
  nohup "$java" $heap "$logopt" -cp "$lib/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/broker.pid"
  local waited=0
  until grep -qs "Kafka Server started" "$dir/logs/server.log"; do
    if ! pid_alive "$dir"; then
      tail -n 30 "$dir/logs/server.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
      rm -f "$dir/broker.pid"
      die "broker exited during start-up (logs in $dir/logs)"
    fi
    if [ "$waited" -ge $((ready_timeout * 5)) ]; then
      stop "$dir"
      die "broker not ready after ${ready_timeout}s (logs in $dir/logs)"
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  echo "127.0.0.1:$port"
}

stop() {
  local dir=$1 pid i
  [ -f "$dir/broker.pid" ] || { echo "broker.sh: not running ($dir)" >&2; return 0; }
  pid=$(cat "$dir/broker.pid")
  if kill -TERM "$pid" 2>/dev/null; then
    for i in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "broker.sh: pid $pid ignored SIGTERM for 30 s, killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/broker.pid"
  echo "broker.sh: stopped ($dir)" >&2
}

status() {
  local dir=$1
  if pid_alive "$dir"; then
    echo "running $(cat "$dir/bootstrap" 2>/dev/null) pid $(cat "$dir/broker.pid")"
  else
    echo "stopped"
    return 3
  fi
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
dir=$here/run
while [ $# -gt 0 ]; do
  case $1 in
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; dir=$2; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
case $cmd in
  fetch) fetch ;;
  start) start "$dir" ;;
  stop) stop "$dir" ;;
  status) status "$dir" ;;
  -h | --help | help) usage ;;
  *) die "unknown command: $cmd (fetch, start, stop, status)" ;;
esac
