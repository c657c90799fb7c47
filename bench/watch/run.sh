#!/usr/bin/env bash
# What watching costs (issue 10): the same Portcullis build answering the same authoritative load
# with every watcher off ("baseline") and with all of them on ("portcullis"): the JSON query log of
# every query, dnstap of every client query and response, the Prometheus endpoint with the top-N
# sketches, and the tunnel detector. bench/dnsperf/run.sh does the measuring (servers pinned to
# SERVER_CPU, dnsperf to CLIENT_CPU, interleaved rounds, medians); the figure is its line
# "portcullis/baseline: queries per CPU-second", the overhead ratio (aim >= 0.8).
#
# usage: bench/watch/run.sh     (about 3 minutes; the environment of bench/dnsperf/run.sh applies)
#        WATCH="querylog" bench/watch/run.sh   one watcher at a time (querylog, dnstap, metrics, detection)
#        QUEUE=2048 bench/watch/run.sh          the query-event and dnstap rings' slots (queue-size)
#        SAMPLE=10 bench/watch/run.sh           the query log logs one query in 10
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-watch-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
publish_portcullis
port=$(free_port)
WATCH=${WATCH:-querylog dnstap metrics detection}
: >"$WORK/watch.yaml"
for w in $WATCH; do
    case $w in
        querylog) printf 'query-log:\n  file: %s\n  max-size: 1G\n  keep: 20\n' "$WORK/queries.jsonl"
                  [ -n "${QUEUE:-}" ] && printf '  queue-size: %s\n' "$QUEUE"
                  [ -n "${SAMPLE:-}" ] && printf '  sample: %s\n' "$SAMPLE" ;;
        dnstap) printf 'dnstap:\n  file: %s\n' "$WORK/dnstap.fstrm"
                [ -n "${QUEUE:-}" ] && printf '  queue-size: %s\n' "$QUEUE" ;;
        metrics) printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$port" ;;
        detection) printf 'detection:\n  enabled: true\n' ;;
        *) echo "run.sh: unknown watcher $w" >&2; exit 2 ;;
    esac >>"$WORK/watch.yaml"
done
: >"$WORK/off.yaml"
log "watchers on: $(tr '\n' ' ' <"$WORK/watch.yaml")"
# With metrics on, scrape the endpoint every second while the runs go on: the last scrape says how
# many queries were answered and how many watcher events and dnstap messages were dropped.
SCRAPER=
if grep -q '^metrics:' "$WORK/watch.yaml"; then
    (while sleep 1; do
        curl -sf "http://127.0.0.1:$port/metrics" >"$WORK/scrape.tmp" 2>/dev/null && mv "$WORK/scrape.tmp" "$WORK/scrape.prom"
    done) &
    SCRAPER=$!
fi
SERVERS="baseline portcullis" PORTCULLIS_PUBLISH=$PUBLISH BASELINE_PUBLISH=$PUBLISH \
    CONFIG_portcullis=$WORK/watch.yaml CONFIG_baseline=$WORK/off.yaml COMPARE=0 \
    "$REPO/bench/dnsperf/run.sh"
[ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null
log "query log: $(cat "$WORK"/queries.jsonl* 2>/dev/null | wc -l) lines, dnstap: $(stat -c %s "$WORK/dnstap.fstrm" 2>/dev/null || echo 0) bytes"
if [ -f "$WORK/scrape.prom" ]; then
    awk '/^portcullis_queries_total\{/ { q += $NF } /^portcullis_watch_dropped_total\{/ { print "dropped " $0 } END { print "answered (portcullis_queries_total) " q }' "$WORK/scrape.prom" >&2
fi
