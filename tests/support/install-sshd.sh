#!/usr/bin/env bash
# Installs Debian's OpenSSH server and tmux, which the remote-job tests use to stand in for
# instances, unless they are there. Needs root (or sudo). Safe to run concurrently: the
# first caller installs, the others wait on the lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$root/target"
exec 9>"$root/target/sshd-install.lock"
flock 9
if [ -x /usr/sbin/sshd ] && command -v tmux >/dev/null; then
  exit 0
fi
sudo_if_needed=""
[ "$(id -u)" -eq 0 ] || sudo_if_needed="sudo"
echo "installing openssh-server and tmux ..." >&2
install() { $sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server tmux >&2; }
install || { $sudo_if_needed apt-get update -q >&2 && install; }
