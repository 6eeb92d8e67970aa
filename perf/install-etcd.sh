#!/usr/bin/env bash
# Installs what tern-perf needs besides Rust, with apt (Debian/Ubuntu):
#   etcd-server, etcd-client  etcd 3.4 and etcdctl, the system compared with tern;
#   protobuf-compiler         protoc, which the etcd-client crate's build runs;
#   fonts-dejavu-core         the font the PNG plots are drawn with.
# Idempotent: does nothing when all are installed. Uses sudo only when not root.
set -euo pipefail

packages=(etcd-server etcd-client protobuf-compiler fonts-dejavu-core)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-etcd: already installed: ${packages[*]}"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-etcd: apt-get not found; install these by hand: ${missing[*]}" >&2
        exit 1
    fi
    sudo=()
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "install-etcd: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    echo "install-etcd: installing ${missing[*]}"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# Debian's etcd-server package may start a system etcd on 2379/2380; tern-perf starts its own
# members on other ports, so that service does not get in the way.
echo "etcd:    $(etcd --version | head -n 1)"
echo "etcdctl: $(ETCDCTL_API=3 etcdctl version | head -n 1)"
echo "protoc:  $(protoc --version)"
