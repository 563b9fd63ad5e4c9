#!/usr/bin/env bash
# A one-node SLURM cluster on loopback, living in one folder, to try profiles/slurm without a cluster
# (tests/test_slurm.py runs the workflow on it). Its node offers one GPU, of the model "fake" (a GRES backed by
# /dev/null: SLURM allocates it like a real one, nothing uses it), in two partitions, debug (the default) and
# gpu.
#
#   tools/local_slurm.sh start [DIR]   install Debian's packages if missing, start munged, slurmctld and
#                                      slurmd, wait until the node takes jobs
#   tools/local_slurm.sh env [DIR]     print the `export` lines that point SLURM's clients at it:
#                                      eval "$(tools/local_slurm.sh env)"; sinfo
#   tools/local_slurm.sh stop [DIR]    cancel its jobs, stop its daemons and wait until they are gone
#
# DIR defaults to ${TMPDIR:-/tmp}/toposdf-slurm; nothing is written outside it (apart from the packages).
# Exit status 3 means "SLURM cannot be had here" (missing, and not installable: not root, no apt-get, or the
# install failed); tests skip on it, and fail on any other error.
set -euo pipefail

readonly PACKAGES=(slurmctld slurmd slurm-client munge)
readonly COMMANDS=(slurmctld slurmd sbatch squeue scontrol sinfo scancel srun munged mungekey)
readonly CTLD_PORT=6817 SLURMD_PORT=6818

die() { echo "local_slurm: $*" >&2; exit 1; }
unavailable() { echo "local_slurm: SLURM unavailable: $*" >&2; exit 3; }

missing_commands() {
    local cmd
    for cmd in "${COMMANDS[@]}"; do
        command -v "$cmd" >/dev/null || echo "$cmd"
    done
}

install_packages() {
    [[ -z "$(missing_commands)" ]] && return
    [[ $(id -u) -eq 0 ]] || unavailable "missing $(missing_commands | xargs), and installing needs root"
    command -v apt-get >/dev/null || unavailable "missing $(missing_commands | xargs), and there is no apt-get"
    echo "local_slurm: installing ${PACKAGES[*]}" >&2
    # The packages' own services stay down (no systemd here; and if they start, they use /etc and the
    # default munge socket, never ours).
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends \
        "${PACKAGES[@]}"; } >&2 || unavailable "apt-get install ${PACKAGES[*]} failed"
    [[ -z "$(missing_commands)" ]] || unavailable "still missing after the install: $(missing_commands | xargs)"
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# srun inside a job: the plugin's job step removes every SLURM_* variable, SLURM_CONF included, before it
# calls srun, which would then look for /etc/slurm/slurm.conf. This wrapper, first on PATH, puts it back.
write_srun_wrapper() {
    local real_srun
    real_srun=$(command -v srun)
    mkdir -p "$DIR/bin"
    printf '#!/bin/sh\nSLURM_CONF=%q exec %q "$@"\n' "$DIR/etc/slurm.conf" "$real_srun" >"$DIR/bin/srun"
    chmod 755 "$DIR/bin/srun"
}

write_config() {
    mkdir -p "$DIR"/{etc,log,state,spool,munge}
    # munged insists on a private key and a socket folder that only its owner can write to.
    chmod 700 "$DIR/etc" && chmod 755 "$DIR/munge"
    mungekey --create --force --keyfile="$DIR/etc/munge.key"
    # The node claims 8 CPUs and 64 GB whatever the machine has (config_overrides): the profile's rules ask
    # for that much at the paper's scale, and with no cgroups here nothing enforces it. Tiny jobs fit anyway.
    cat >"$DIR/etc/slurm.conf" <<EOF
ClusterName=toposdf
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
# Finished jobs stay visible to squeue and scontrol for 10 minutes: the plugin's squeue status checks need
# them (MinJobAge >= 3 x its first-check delay), and so do the tests.
MinJobAge=600
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=65536 Gres=gpu:fake:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
    # A GPU line without a File is dropped, and the node then rejects its own GPU (state INVAL).
    echo "Name=gpu Type=fake File=/dev/null" >"$DIR/etc/gres.conf"
    write_srun_wrapper
}

# Waits up to 30 s for the node to take jobs. A daemon that died shows its log at once (the pid file is
# written a moment after a daemon forks, so only a pid file whose process is gone counts as dead).
wait_for_node() {
    local state daemon deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        for daemon in munged slurmctld slurmd; do
            if [[ -f "$DIR/$daemon.pid" ]] && ! pid_alive "$DIR/$daemon.pid"; then
                die "$daemon died: $(tail -n 3 "$DIR/log/$daemon.log")"
            fi
        done
        state=$(timeout 5 sinfo --noheader --nodes=localhost --format=%T 2>/dev/null || true)
        [[ "$state" == idle ]] && return
        sleep 0.2
    done
    die "the node did not become idle within 30 s (state '${state:-unknown}'); see $DIR/log"
}

start() {
    pid_alive "$DIR/slurmctld.pid" && die "already running in $DIR (stop it first)"
    install_packages
    [[ $(id -u) -eq 0 ]] || unavailable "slurmd must run as root"
    local port
    for port in $CTLD_PORT $SLURMD_PORT; do
        port_in_use "$port" && die "port $port is taken: another SLURM is running (tools/local_slurm.sh stop?)"
    done
    write_config
    export SLURM_CONF="$DIR/etc/slurm.conf"
    # --origin: munged would otherwise resolve this host's name; only loopback is used here.
    munged --force --origin=127.0.0.1 --socket="$DIR/munge/munge.socket.2" --key-file="$DIR/etc/munge.key" \
        --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/state/munged.seed"
    slurmctld -c
    slurmd -N localhost
    wait_for_node
    echo "local_slurm: running in $DIR" >&2
}

print_env() {
    [[ -f "$DIR/etc/slurm.conf" ]] || die "no cluster in $DIR (start it first)"
    printf 'export SLURM_CONF=%q\n' "$DIR/etc/slurm.conf"
    # shellcheck disable=SC2016  # $PATH is for the shell that evals these lines
    printf 'export PATH=%q:"$PATH"\n' "$DIR/bin"
}

# Stops the daemon whose pid file is $1: TERM, then KILL if it is still there after 10 s.
stop_daemon() {
    local pidfile=$1
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# Jobs first: their slurmstepd processes outlive slurmd, so they must end while slurmd still runs.
cancel_jobs() {
    pid_alive "$DIR/slurmctld.pid" || return 0
    export SLURM_CONF="$DIR/etc/slurm.conf"
    scancel --user="$(id -un)" || true
    for _ in $(seq 50); do
        [[ -z "$(squeue --noheader --format=%A 2>/dev/null)" ]] && return 0
        sleep 0.2
    done
    echo "local_slurm: jobs still there 10 s after scancel: $(squeue --noheader --format=%A | xargs)" >&2
    return 1
}

stop() {
    local status=0
    cancel_jobs || status=1
    stop_daemon "$DIR/slurmd.pid"
    stop_daemon "$DIR/slurmctld.pid"
    stop_daemon "$DIR/munged.pid"
    return $status
}

main() {
    local command=${1:-}
    DIR=$(realpath -m "${2:-${TMPDIR:-/tmp}/toposdf-slurm}")
    case "$command" in
        start) start ;;
        env) print_env ;;
        stop) stop ;;
        *) echo "usage: $0 start|env|stop [DIR]" >&2; exit 2 ;;
    esac
}

main "$@"
