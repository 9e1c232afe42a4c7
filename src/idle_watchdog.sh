#!/bin/sh
# tether's idle watchdog (instances.<name>.idle_stop). Every minute (tether-idle.timer) it
# asks whether anyone is using this instance, and once nobody has for the rule's time it
# shuts the instance down, which stops it: tether launched it with
# InstanceInitiatedShutdownBehavior=stop, so no AWS credentials are needed here.
#
# The rule is the instance's tag `tether:idle-stop` (`after=<minutes> [cpu_below=<percent>]
# ports=<port,...>`), read from the instance metadata each minute, so `tether apply` can
# change or remove it in place. Without the tag the watchdog does nothing; when the
# metadata cannot be read, the last rule read stands (silence is not a new rule).
#
# Activity, any of which resets the idle clock:
#   - a tmux session named as tether names job sessions (`tether-<project>-<job>`);
#   - an established connection to one of the rule's ports: sshd's (every ssh session,
#     forwards included) and Jupyter's;
#   - a Jupyter kernel that used more than a second of CPU since the last check;
#   - cloud-init still setting the instance up;
#   - with `cpu_below`, the average CPU over the last `after` minutes at or above it.
# Its own checks are none of these: it opens no connection but to the metadata service,
# and starts no tmux session.
#
# `tether-idle status` prints the rule and the idle time, for `tether show`.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
IMDS="@IMDS@"
STATE="@STATE@"
TMUX_DIRS="@TMUX_DIRS@"
# Nothing here is secret: `tether show` reads the status as the login user.
umask 022
mkdir -p "$STATE" || exit 1
now=$(date +%s)

# The rule: the tag when the metadata answers, else the last one read.
read_rule() {
    token=$(curl -s -m 2 -X PUT "$IMDS/latest/api/token" \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' 2>/dev/null) || token=
    code=$(curl -s -m 2 -o "$STATE/rule.new" -w '%{http_code}' \
        -H "X-aws-ec2-metadata-token: $token" \
        "$IMDS/latest/meta-data/tags/instance/tether:idle-stop" 2>/dev/null) || code=000
    case "$code" in
        200) mv "$STATE/rule.new" "$STATE/rule" ;;
        404) rm -f "$STATE/rule" "$STATE/rule.new" ;;
        *) rm -f "$STATE/rule.new" ;;
    esac
    after=
    cpu_below=
    ports=
    [ -f "$STATE/rule" ] || return 1
    for word in $(cat "$STATE/rule"); do
        case "$word" in
            after=*) after=${word#after=} ;;
            cpu_below=*) cpu_below=${word#cpu_below=} ;;
            ports=*) ports=$(echo "${word#ports=}" | tr ',' ' ') ;;
        esac
    done
    case "$after" in '' | *[!0-9]*) return 1 ;; esac
    case "$cpu_below" in *[!0-9]*) return 1 ;; esac
    for port in $ports; do
        case "$port" in *[!0-9]*) return 1 ;; esac
    done
    return 0
}

# An established TCP connection whose local end is `port`.
connected() {
    hex=$(printf '%04X' "$1")
    awk -v port=":$hex" 'FNR > 1 && $4 == "01" && substr($2, length($2) - 4) == port { found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A tether job's tmux session, of any user.
job_session() {
    for socket in $TMUX_DIRS; do
        [ -S "$socket" ] || continue
        if tmux -S "$socket" list-sessions -F '#{session_name}' 2>/dev/null | grep -q '^tether-'; then
            return 0
        fi
    done
    return 1
}

# A Jupyter kernel that used more than a second of CPU since the last check.
kernel_busy() {
    busy=1
    hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
    : > "$STATE/kernels.new"
    for dir in /proc/[0-9]*; do
        tr '\0' ' ' < "$dir/cmdline" 2>/dev/null | grep -q 'ipykernel' || continue
        pid=${dir#/proc/}
        # utime and stime: fields 14 and 15, counted after the `(comm)` that may hold spaces.
        ticks=$(sed 's/.*) //' "$dir/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
        echo "$pid $ticks" >> "$STATE/kernels.new"
        before=$(awk -v pid="$pid" '$1 == pid { print $2 }' "$STATE/kernels" 2>/dev/null)
        if [ -n "$before" ] && [ $((ticks - before)) -gt "$hz" ]; then
            busy=0
        fi
    done
    mv "$STATE/kernels.new" "$STATE/kernels"
    return $busy
}

# Why the instance is in use, if it is.
activity() {
    # First, so that its CPU counts are a minute apart whatever else is found.
    if kernel_busy; then echo "a Jupyter kernel is busy"; return 0; fi
    if job_session; then echo "a tether job is running"; return 0; fi
    for port in $ports; do
        if connected "$port"; then echo "a connection to port $port is open"; return 0; fi
    done
    if command -v cloud-init >/dev/null 2>&1 && [ ! -e /var/lib/cloud/instance/boot-finished ]; then
        echo "cloud-init is setting the instance up"; return 0
    fi
    return 1
}

# Average CPU use in percent over the samples of the last `after` minutes.
cpu_average() {
    awk -v now="$now" -v window=$((after * 60)) '
        now - $1 <= window + 30 { if (first == "") { first = $2; ftotal = $3 } last = $2; ltotal = $3 }
        END { if (ltotal > ftotal) printf "%d\n", 100 * (last - first) / (ltotal - ftotal); else print 0 }
    ' "$STATE/cpu"
}

sample_cpu() {
    awk -v now="$now" '$1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8 + $9; print now, busy, busy + $5 + $6 }' /proc/stat >> "$STATE/cpu"
    # Keep a day of samples at most.
    tail -n 1500 "$STATE/cpu" > "$STATE/cpu.new" && mv "$STATE/cpu.new" "$STATE/cpu"
}

# The status line: `after_minutes=30 cpu_below=5 idle_seconds=360 reason=<text>`.
status() {
    echo "after_minutes=$after cpu_below=$cpu_below idle_seconds=$1 reason=$2" > "$STATE/status"
}

check() {
    sample_cpu
    if ! read_rule; then
        rm -f "$STATE/last-active"
        echo "no rule" > "$STATE/status"
        return 0
    fi
    # A start (or a reboot) begins a new idle clock: a stopped instance started again is
    # not stopped at once for the time it spent stopped.
    booted=$((now - $(cut -d. -f1 /proc/uptime)))
    last=$(cat "$STATE/last-active" 2>/dev/null || echo 0)
    case "$last" in '' | *[!0-9]*) last=0 ;; esac
    [ "$last" -ge "$booted" ] || last=$now
    if reason=$(activity); then
        last=$now
    else
        reason="idle"
    fi
    echo "$last" > "$STATE/last-active"
    idle=$((now - last))
    status "$idle" "$reason"
    [ "$idle" -ge $((after * 60)) ] || return 0
    if [ -n "$cpu_below" ]; then
        average=$(cpu_average)
        if [ "$average" -ge "$cpu_below" ]; then
            status "$idle" "cpu at $average%"
            return 0
        fi
    fi
    status "$idle" "stopping"
    logger -t tether-idle "idle for $idle seconds (rule: after $after minutes): stopping" 2>/dev/null
    @SHUTDOWN@
}

case "${1:-check}" in
    check) check ;;
    status) cat "$STATE/status" 2>/dev/null || echo "no status yet" ;;
    *) echo "usage: tether-idle [check|status]" >&2; exit 2 ;;
esac
