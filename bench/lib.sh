# Shared by the harnesses under bench/ (sourced, not run).

log() { echo "[$(date +%T)] $*" >&2; }

# Exits with one line unless every tool is on PATH. $1: the harness's name, for the message.
require_tools() {
    local who=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$who: $tool is not installed" >&2; exit 1; }
    done
}

# Stops a server: TERM, a bounded wait ($2 tenths of a second, default 150: NSD and Knot free a
# big zone on the way out), then KILL, so a stuck server never hangs a harness; then reaps it.
terminate() {
    local pid=$1 tenths=${2:-150}
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

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

# Sets PUBLISH: PORTCULLIS_PUBLISH if given (an existing `dotnet publish` directory), else a Release
# publish into $WORK/publish of the working tree, or of commit PORTCULLIS_REF (git archive). Extra
# arguments go to `dotnet publish` (-r linux-x64 -p:PublishAot=true, ...). The caller sets REPO and WORK.
publish_portcullis() {
    if [ -n "${PORTCULLIS_PUBLISH:-}" ]; then
        PUBLISH=$PORTCULLIS_PUBLISH
        return
    fi
    PUBLISH=$WORK/publish
    local source=$REPO
    if [ -n "${PORTCULLIS_REF:-}" ]; then
        source=$WORK/source
        mkdir -p "$source"
        git -C "$REPO" archive "$PORTCULLIS_REF" | tar -x -C "$source"
        log "building Portcullis $(git -C "$REPO" rev-parse --short "$PORTCULLIS_REF") (Release $*) into $PUBLISH"
    else
        log "building Portcullis from the working tree (Release $*; HEAD is $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)) into $PUBLISH"
    fi
    # --artifacts-path keeps bin/ and obj/ out of the source tree.
    dotnet publish "$source/src/Portcullis" -c Release -o "$PUBLISH" --artifacts-path "$WORK/artifacts" "$@" \
        -nologo -v quiet >"$WORK/publish.log" 2>&1 || { cat "$WORK/publish.log" >&2; exit 1; }
}
