# Shared by bench/dnsperf/run.sh and bench/zoneload/run.sh (sourced, not run).

log() { echo "[$(date +%T)] $*" >&2; }

# Waits (at most QUIET_WAIT s, and QUIET_BUDGET s over the whole run) for one second in which the
# machine is at least 90% idle: our own processes are idle between runs, so what runs then is
# somebody else's work. The caller sets QUIET_WAIT and QUIET_BUDGET.
wait_quiet() {
    local start=$SECONDS wait=$QUIET_WAIT a b busy total
    [ "$wait" -gt "$QUIET_BUDGET" ] && wait=$QUIET_BUDGET
    [ "$wait" -le 0 ] && return 0
    while [ $((SECONDS - start)) -lt "$wait" ]; do
        a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
        sleep 1
        b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
        busy=$(( ${b% *} - ${a% *} )); total=$(( ${b#* } - ${a#* } ))
        if [ $((busy * 10)) -le "$total" ]; then
            QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - start)))
            return 0
        fi
    done
    QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - start)))
    log "  (the machine stayed busy for $wait s; measuring anyway)"
}

# A port free for both UDP and TCP on 127.0.0.1 (the servers listen on both). The caller sets PY.
free_port() {
    "$PY" - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        t.close()
        u.close()
EOF
}
