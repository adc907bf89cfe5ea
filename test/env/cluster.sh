#!/usr/bin/env bash
# A real OpenSSH server, munge and single-node Slurm on 127.0.0.1 for the executor tests (see docs/cluster-setup.md).
#
#   cluster.sh start         install missing Debian packages, start whatever is not running (fast when all run)
#   cluster.sh stop          cancel every job, then stop slurmd, slurmctld, munged and sshd by their pid files
#   cluster.sh status        say what runs; exit 0 only when everything does
#   cluster.sh stop-sshd     stop sshd and drop its open sessions (the tests' "sshd restarted" case)
#   cluster.sh stop-slurmctld  stop the Slurm controller only (the tests' "controller down" case)
#   cluster.sh start-slurmctld start it again with the jobs it knew (a controller restart)
#
# Everything lives under $RELABEL_CLUSTER_DIR (default /tmp/relabel-cluster). Ports: sshd 2222, slurmctld 6817,
# slurmd 6818, all on 127.0.0.1. `start` writes $DIR/env.json (host, port, user, keys, host key fingerprint,
# home, slurm_conf) for the tests. Needs root.
set -euo pipefail

DIR=${RELABEL_CLUSTER_DIR:-/tmp/relabel-cluster}
SSH_PORT=2222
TEST_USER=relabeltest
# The second client key is protected by this passphrase (a test fixture, not a secret).
KEY_PASSPHRASE="relabel test passphrase"
HOME_DIR=$DIR/home/$TEST_USER
NODE=$(hostname -s)
export SLURM_CONF=$DIR/slurm/slurm.conf

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# A pid file's process is alive when it exists and is not a zombie (kill -0 succeeds on zombies).
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  local stat
  stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [ -n "$stat" ] && [ "${stat:0:1}" != Z ]
}

wait_dead() {
  local pidfile=$1 i
  for i in $(seq 1 100); do
    alive "$pidfile" || return 0
    sleep 0.05
  done
  return 1
}

stop_pidfile() {
  local pidfile=$1
  if alive "$pidfile"; then
    kill "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null || true
    wait_dead "$pidfile" || { kill -9 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null || true; wait_dead "$pidfile" || true; }
  fi
  rm -f "$pidfile"
}

ensure_packages() {
  local missing=()
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >"$DIR/log/apt.log" 2>&1 || {
    apt-get update -qq >>"$DIR/log/apt.log" 2>&1
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >>"$DIR/log/apt.log" 2>&1
  } || die "apt-get install ${missing[*]} failed, see $DIR/log/apt.log"
}

ensure_user_and_keys() {
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd -M -d "$HOME_DIR" -s /bin/bash "$TEST_USER"
  fi
  # useradd leaves the account locked ("!"), which sshd refuses without PAM even for key logins.
  usermod -p '*' "$TEST_USER"
  mkdir -p "$HOME_DIR" "$DIR/ssh" "$DIR/keys"
  chown "$TEST_USER:" "$HOME_DIR"
  chmod 755 "$DIR" "$DIR/home" "$DIR/ssh"
  chmod 700 "$DIR/keys"
  [ -f "$DIR/ssh/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C relabel-test-host -f "$DIR/ssh/host_ed25519"
  [ -f "$DIR/keys/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C relabel-test-client -f "$DIR/keys/client_ed25519"
  [ -f "$DIR/keys/client_protected_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N "$KEY_PASSPHRASE" -C relabel-test-protected -f "$DIR/keys/client_protected_ed25519"
  # sshd reads authorized keys as the target user: one file per user, owned by that user.
  cat "$DIR/keys/client_ed25519.pub" "$DIR/keys/client_protected_ed25519.pub" >"$DIR/ssh/authorized_keys.$TEST_USER"
  chown "$TEST_USER:" "$DIR/ssh/authorized_keys.$TEST_USER"
  chmod 600 "$DIR/ssh/authorized_keys.$TEST_USER"
}

start_sshd() {
  alive "$DIR/run/sshd.pid" && return 0
  mkdir -p /run/sshd
  chmod 755 /run/sshd
  cat >"$DIR/ssh/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $DIR/ssh/host_ed25519
PidFile $DIR/run/sshd.pid
AuthorizedKeysFile $DIR/ssh/authorized_keys.%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
StrictModes no
AllowUsers $TEST_USER
Subsystem sftp internal-sftp
SetEnv SLURM_CONF=$SLURM_CONF
EOF
  /usr/sbin/sshd -t -f "$DIR/ssh/sshd_config" || die "sshd -t rejected $DIR/ssh/sshd_config"
  /usr/sbin/sshd -f "$DIR/ssh/sshd_config" -E "$DIR/log/sshd.log" 9>&-
  local i
  for i in $(seq 1 100); do
    alive "$DIR/run/sshd.pid" && return 0
    sleep 0.02
  done
  die "sshd did not start, see $DIR/log/sshd.log"
}

# Stops the listening sshd and the per-connection sshd processes it forked, so clients really lose their session.
stop_sshd() {
  [ -s "$DIR/run/sshd.pid" ] || return 0
  local master sessions
  master=$(cat "$DIR/run/sshd.pid")
  sessions=$(ps -o pid= --ppid "$master" 2>/dev/null || true)
  stop_pidfile "$DIR/run/sshd.pid"
  for pid in $sessions; do kill "$pid" 2>/dev/null || true; done
}

start_munged() {
  alive "$DIR/run/munged.pid" && return 0
  mkdir -p "$DIR/munge/key"
  chmod 700 "$DIR/munge/key"
  # munge clients need execute permission on every directory up to the socket.
  chmod 755 "$DIR/munge"
  if [ ! -s "$DIR/munge/key/munge.key" ]; then
    head -c 1024 /dev/urandom >"$DIR/munge/key/munge.key"
    chmod 400 "$DIR/munge/key/munge.key"
  fi
  munged --key-file="$DIR/munge/key/munge.key" --socket="$DIR/munge/munge.sock" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed" --force 9>&-
  munge -S "$DIR/munge/munge.sock" -n | unmunge -S "$DIR/munge/munge.sock" >/dev/null || die "munge round trip failed, see $DIR/log/munged.log"
}

write_slurm_conf() {
  mkdir -p "$DIR/slurm" "$DIR/state" "$DIR/spool"
  cat >"$SLURM_CONF" <<EOF
ClusterName=relabeltest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
MinJobAge=3600
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=8 RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# $1 = "recover": the controller takes up its saved jobs, as a cluster's controller does after a restart;
# otherwise it starts clean.
start_slurm() {
  if ! alive "$DIR/run/slurmctld.pid"; then
    if [ "${1:-}" = recover ]; then
      slurmctld -f "$SLURM_CONF" 9>&-
    else
      write_slurm_conf
      slurmctld -c -f "$SLURM_CONF" 9>&-
    fi
  fi
  alive "$DIR/run/slurmd.pid" || slurmd -N "$NODE" -f "$SLURM_CONF" 9>&-
  local i state=""
  for i in $(seq 1 200); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    case "$state" in idle*|mixed*|allocated*) break ;; esac
    sleep 0.05
  done
  case "$state" in idle*|mixed*|allocated*) ;; *) die "slurm node $NODE is '${state:-unreachable}', see $DIR/log/slurm*.log" ;; esac
  # sacct -c opens the job completion file for writing, so non-root users need write access.
  touch "$DIR/log/jobcomp.log"
  chmod 666 "$DIR/log/jobcomp.log"
}

write_env() {
  local fingerprint
  fingerprint=$(ssh-keygen -lf "$DIR/ssh/host_ed25519.pub" | awk '{print $2}')
  cat >"$DIR/env.json.tmp" <<EOF
{
  "host": "127.0.0.1",
  "port": $SSH_PORT,
  "user": "$TEST_USER",
  "private_key_file": "$DIR/keys/client_ed25519",
  "protected_key_file": "$DIR/keys/client_protected_ed25519",
  "protected_key_passphrase": "$KEY_PASSPHRASE",
  "host_key": "$fingerprint",
  "home": "$HOME_DIR",
  "slurm_conf": "$SLURM_CONF",
  "node": "$NODE"
}
EOF
  mv "$DIR/env.json.tmp" "$DIR/env.json"
}

all_running() {
  alive "$DIR/run/sshd.pid" && alive "$DIR/run/munged.pid" && alive "$DIR/run/slurmctld.pid" && alive "$DIR/run/slurmd.pid"
}

cmd_start() {
  [ "$(id -u)" -eq 0 ] || die "start needs root (it installs packages and runs sshd, munged and Slurm)"
  # An env.json written by an older version of this script lacks keys the tests now read: set up again.
  if [ -f "$DIR/env.json" ] && grep -q '"protected_key_file"' "$DIR/env.json" && all_running; then
    return 0
  fi
  mkdir -p "$DIR/log" "$DIR/run"
  ensure_packages
  ensure_user_and_keys
  start_sshd
  start_munged
  start_slurm
  write_env
  log "running under $DIR (sshd 127.0.0.1:$SSH_PORT, slurmctld :6817, slurmd :6818)"
}

cmd_stop() {
  if alive "$DIR/run/slurmctld.pid"; then
    local ids i
    ids=$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING -o %i 2>/dev/null || true)
    [ -z "$ids" ] || scancel $ids 2>/dev/null || true
    # slurmd leaves running jobs behind when killed: wait until they are gone.
    for i in $(seq 1 150); do
      [ -z "$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING -o %i 2>/dev/null || true)" ] && break
      sleep 0.1
    done
  fi
  stop_pidfile "$DIR/run/slurmd.pid"
  stop_pidfile "$DIR/run/slurmctld.pid"
  stop_pidfile "$DIR/run/munged.pid"
  stop_sshd
}

cmd_status() {
  local rc=0 name
  for name in sshd munged slurmctld slurmd; do
    if alive "$DIR/run/$name.pid"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"; else echo "$name: stopped"; rc=3; fi
  done
  return $rc
}

# Test files start the cluster concurrently: one caller at a time. The daemons must not inherit the lock (9>&-).
exec 9>"$DIR.lock"
flock 9

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  stop-sshd) stop_sshd ;;
  stop-slurmctld) stop_pidfile "$DIR/run/slurmctld.pid" ;;
  start-slurmctld) start_slurm recover ;;
  *) echo "usage: $0 start|stop|status|stop-sshd|stop-slurmctld|start-slurmctld" >&2; exit 2 ;;
esac
