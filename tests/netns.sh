#!/usr/bin/env bash
# Runs a command inside a private network namespace: loopback, plus an unrouted veth pair
# (10.99.0.1/24 with the default route through it), because Firefox gathers no candidates
# without a non-loopback interface and a default route. Nothing inside can reach another
# machine. As root it uses `unshare -n`, otherwise `unshare -rn` (user namespaces).
#   tests/netns.sh COMMAND [ARGS...]
set -euo pipefail
ns=(unshare -n)
[ "$(id -u)" -eq 0 ] || ns=(unshare -rn)
exec "${ns[@]}" bash -c '
  set -e
  ip link set lo up
  ip link add t0 type veth peer name t1
  ip addr add 10.99.0.1/24 dev t0
  ip link set t0 up && ip link set t1 up
  ip route add default dev t0
  exec "$@"
' bash "$@"
