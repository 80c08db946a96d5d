#!/usr/bin/env bash
# Provision one machine of an EVCharging network; safe to run again (idempotent).
#
#   provision.sh central --central-ip IP
#   provision.sh cps     --central-ip IP [--cps ALC1,ALC3,MAD2]
#   provision.sh drivers --central-ip IP [--drivers D1,D2] [--requests D1=ALC1,ALC3,MAD2]
#
# Installs the package into /opt/evcharging (from --source, default: this checkout), the
# evcharging user and group, the systemd units, and the configs under /etc/evcharging, then
# enables and starts the role's instances. With --configs-only it writes only the configs
# (into --etc DIR): that is what the three-host test and `vagrant provision` share.
# Apache Kafka itself is installed by the Vagrantfile on the central machine.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

role=${1:-}; [ -n "$role" ] || usage
shift
case "$role" in central|cps|drivers) ;; -h|--help) usage 0 ;; *) echo "provision.sh: unknown role '$role'" >&2; usage ;; esac

here=$(cd "$(dirname "$0")/.." && pwd)
central_ip="" cps="ALC1,ALC3,MAD2" drivers="D1,D2" requests="D1=ALC1,ALC3,MAD2"
etc=/etc/evcharging state=/var/lib/evcharging source=$here configs_only=0 start=1
kafka_port=9092 central_port=7000
while [ $# -gt 0 ]; do
    case "$1" in
        --central-ip) central_ip=$2; shift 2 ;;
        --cps) cps=$2; shift 2 ;;
        --drivers) drivers=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --etc) etc=$2; shift 2 ;;
        --state) state=$2; shift 2 ;;
        --source) source=$2; shift 2 ;;
        --configs-only) configs_only=1; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "provision.sh: unknown option '$1'" >&2; usage ;;
    esac
done
[ -n "$central_ip" ] || { echo "provision.sh: --central-ip is required" >&2; exit 2; }

# Sample data for the CPs of the lab: id -> location|price|city.
cp_data() {
    case "$1" in
        ALC1) echo "C/ Italia 5|0.54|Alicante" ;;
        ALC3) echo "Gran Vía 2|0.45|Alicante" ;;
        MAD2) echo "C/ Serrano 18|0.60|Madrid" ;;
        SEV4) echo "Av. de la Constitución 1|0.50|Sevilla" ;;
        *) echo "Lab bay $1|0.50|Alicante" ;;
    esac
}

# Write a file only when its content changes, so that re-runs touch nothing.
put() {
    local path=$1 content
    content=$(cat)
    if [ ! -f "$path" ] || [ "$(cat "$path")" != "$content" ]; then
        printf '%s\n' "$content" > "$path"
        echo "wrote $path"
    fi
}

instances=()
write_configs() {
    mkdir -p "$etc"
    put "$etc/evd.yaml" <<EOF
# Site-wide settings of this machine (written by provision.sh).
transport:
  kind: kafka
  bootstrap: $central_ip:$kafka_port
  topic_prefix: evcharging
log:
  level: info
EOF
    case "$role" in
    central)
        put "$etc/central.yaml" <<EOF
name: central
role: central
central:
  listen: 0.0.0.0:$central_port
  database: $state/central.db
EOF
        instances+=(central)
        ;;
    cps)
        local port=6000 id location price city
        IFS=, read -ra ids <<< "$cps"
        for id in "${ids[@]}"; do
            port=$((port + 1))
            IFS='|' read -r location price city <<< "$(cp_data "$id")"
            put "$etc/engine-$id.yaml" <<EOF
name: engine-$id
role: engine
engine:
  listen: 127.0.0.1:$port
  auto_plug: true
  journal: $state/engine-$id.journal
EOF
            put "$etc/monitor-$id.yaml" <<EOF
name: monitor-$id
role: monitor
monitor:
  cp_id: $id
  engine: 127.0.0.1:$port
  central: $central_ip:$central_port
  location: "$location"
  price: $price
  city: $city
EOF
            instances+=("engine-$id" "monitor-$id")
        done
        ;;
    drivers)
        local id file
        IFS=, read -ra ids <<< "$drivers"
        for id in "${ids[@]}"; do
            file=null
            for spec in ${requests//;/ }; do
                if [ "${spec%%=*}" = "$id" ]; then
                    file=$etc/requests-$id.txt
                    tr ',' '\n' <<< "${spec#*=}" | put "$file"
                fi
            done
            put "$etc/driver-$id.yaml" <<EOF
name: driver-$id
role: driver
driver:
  id: $id
  requests_file: $file
EOF
            instances+=("driver-$id")
        done
        ;;
    esac
}

install_package() {
    if [ ! -x /opt/evcharging/bin/python ]; then
        python3 -m venv /opt/evcharging
    fi
    /opt/evcharging/bin/pip install --quiet --upgrade "$source"
    for command in evd evctl EV_Central EV_CP_E EV_CP_M EV_Driver; do
        ln -sfn "/opt/evcharging/bin/$command" "/usr/bin/$command"
    done
}

install_user_and_units() {
    install -D -m 0644 "$here/systemd/evcharging.sysusers" /usr/lib/sysusers.d/evcharging.conf
    if command -v systemd-sysusers >/dev/null && [ -d /run/systemd/system ]; then
        systemd-sysusers /usr/lib/sysusers.d/evcharging.conf
    elif ! getent passwd evcharging >/dev/null; then
        getent group evcharging >/dev/null || groupadd --system evcharging
        useradd --system --gid evcharging --home-dir "$state" --shell /usr/sbin/nologin evcharging
    fi
    install -d -o evcharging -g evcharging -m 0750 "$state"
    install -m 0644 "$here/systemd/evd@.service" "$here/systemd/evd.target" /etc/systemd/system/
    for page in "$here"/man/*.[158]; do
        [ -f "$page" ] && install -D -m 0644 "$page" "/usr/local/share/man/man${page##*.}/$(basename "$page")"
    done
    chgrp -R evcharging "$etc" && chmod -R g+rX,o-rwx "$etc"
}

write_configs
if [ "$configs_only" = 1 ]; then
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "provision.sh: run as root (or use --configs-only)" >&2; exit 1; }
install_package
install_user_and_units
for instance in "${instances[@]}"; do
    evd check -c "$etc/$instance.yaml" >/dev/null
done
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable evd.target "${instances[@]/#/evd@}"
    if [ "$start" = 1 ]; then
        systemctl restart evd.target "${instances[@]/#/evd@}"
    fi
fi
echo "provisioned $role: ${instances[*]}"
