#!/usr/bin/env bash
# Provision one machine of an EVCharging network; safe to run again (idempotent).
#
#   provision.sh central --central-ip IP [--share DIR]
#   provision.sh token   [--share DIR]              (on central, once it runs; central does it itself)
#   provision.sh cps     --central-ip IP [--share DIR] [--cps ALC1,ALC3,MAD2]
#   provision.sh drivers --central-ip IP [--share DIR] [--drivers D1,D2] [--requests D1=ALC1,ALC3,MAD2]
#
# Installs the package into /opt/evcharging (from --source, default: this checkout), the
# evcharging user and group, the systemd units, and the configs under /etc/evcharging, then
# enables and starts the role's instances. With --configs-only it installs nothing and
# starts nothing (it uses evd from --bin DIR): the three-host test runs it so, without systemd.
# With --no-register, cps and drivers write their configs without asking central anything.
#
# central makes the site's CA and central's certificate (TLS on the CP link and the API),
# puts the CA and a provisioning API token into --share DIR (default: .site in this checkout,
# which every Vagrant machine sees as /vagrant/.site); cps and drivers take them from there and
# register their CPs and drivers through central's HTTPS API: no credential is copied by hand.
# Apache Kafka itself is installed by the Vagrantfile on the central machine.
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

role=${1:-}; [ -n "$role" ] || usage
shift
case "$role" in central|token|cps|drivers) ;; -h|--help) usage 0 ;; *) echo "provision.sh: unknown role '$role'" >&2; usage ;; esac

here=$(cd "$(dirname "$0")/.." && pwd)
central_ip="" cps="ALC1,ALC3,MAD2" drivers="D1,D2" requests="D1=ALC1,ALC3,MAD2"
etc=/etc/evcharging state=/var/lib/evcharging source=$here configs_only=0 start=1
share=$here/.site bin=/opt/evcharging/bin register=1
kafka_port=9092 central_port=7000 api_port=8443
while [ $# -gt 0 ]; do
    case "$1" in
        --central-ip) central_ip=$2; shift 2 ;;
        --cps) cps=$2; shift 2 ;;
        --drivers) drivers=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --etc) etc=$2; shift 2 ;;
        --state) state=$2; shift 2 ;;
        --share) share=$2; shift 2 ;;
        --source) source=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --configs-only) configs_only=1; shift ;;
        --no-register) register=0; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "provision.sh: unknown option '$1'" >&2; usage ;;
    esac
done
[ -n "$central_ip" ] || [ "$role" = token ] || { echo "provision.sh: --central-ip is required" >&2; exit 2; }
fail() { echo "provision.sh: $*" >&2; exit 1; }

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
        make_certificates
        put "$etc/central.yaml" <<EOF
name: central
role: central
central:
  listen: 0.0.0.0:$central_port
  database: $state/central.db
  open_registration: false        # CPs are registered through the API (provision.sh cps)
  open_drivers: false             # so are drivers (provision.sh drivers)
  tls: {cert: $etc/pki/central.pem, key: $etc/pki/central.key, required: true}
api:
  listen: 0.0.0.0:$api_port
  tls: {cert: $etc/pki/central.pem, key: $etc/pki/central.key}
EOF
        instances+=(central)
        ;;
    cps)
        local port=6000 id location price city
        take_site_files
        IFS=, read -ra ids <<< "$cps"
        for id in "${ids[@]}"; do
            port=$((port + 1))
            IFS='|' read -r location price city <<< "$(cp_data "$id")"
            register_cp "$id" "$location" "$price" "$city"
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
  central_ca: $etc/ca.pem
  credential_file: $state/$id.cred
EOF
            instances+=("engine-$id" "monitor-$id")
        done
        ;;
    drivers)
        local id file
        take_site_files
        IFS=, read -ra ids <<< "$drivers"
        for id in "${ids[@]}"; do
            register_driver "$id"
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

# The site CA (kept on central) and central's certificate for the address CPs and operators use.
make_certificates() {
    "$bin/python" -m evd.pki ca "$etc/pki" >/dev/null
    "$bin/python" -m evd.pki cert "$etc/pki" central "$central_ip" localhost 127.0.0.1 >/dev/null
    mkdir -p "$share"
    install -m 0644 "$etc/pki/ca.pem" "$share/ca.pem"
}

# An API token for provisioning the other machines, issued by the running central, put in the share.
issue_token() {
    [ -s "$share/provision.token" ] && return 0
    local tries=0 answer
    until "$bin/evctl" -n central ping >/dev/null 2>&1; do
        tries=$((tries + 1)); [ $tries -lt 60 ] || fail "central does not answer on its control socket"
        sleep 1
    done
    "$bin/evctl" -n central api token revoke provision >/dev/null 2>&1 || true  # the share lost it: make a new one
    answer=$("$bin/evctl" -n central --json api token add provision) || fail "cannot issue the provisioning token"
    mkdir -p "$share"
    (umask 077 && "$bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])' <<< "$answer" > "$share/provision.token")
    echo "wrote $share/provision.token"
}

# The site CA and the provisioning token, from the share central filled.
take_site_files() {
    [ -s "$share/ca.pem" ] && { [ -s "$share/provision.token" ] || [ "$register" = 0 ]; } ||
        fail "no site CA or token in $share: provision central first (it puts ca.pem and provision.token there)"
    mkdir -p "$state" "$etc"
    install -m 0644 "$share/ca.pem" "$etc/ca.pem"
}

# evctl on central's HTTPS API, with the provisioning token.
central_api() {
    "$bin/evctl" --url "https://$central_ip:$api_port" --token-file "$share/provision.token" --cacert "$etc/ca.pem" "$@"
}

# Register one driver at central (R26), unless it is already.
register_driver() {
    [ "$register" = 1 ] || return 0
    local listed
    listed=$(central_api --json drivers list) || fail "cannot list central's drivers"
    if ! "$bin/python" -c 'import json, sys; sys.exit(sys.argv[1] not in {d["id"] for d in json.loads(sys.argv[2])})' "$1" "$listed"; then
        central_api drivers add "$1" >/dev/null || fail "cannot register driver $1 with central"
        echo "registered driver $1 with central"
    fi
}

# Register one CP through central's HTTPS API and keep its credential (once: a new one revokes the old).
register_cp() {
    local id=$1 credential_file=$state/$1.cred answer
    [ "$register" = 1 ] || return 0
    [ -s "$credential_file" ] && return 0
    answer=$(central_api --json cp register "$id" --location "$2" --price "$3" --city "$4") || fail "cannot register $id with central"
    (umask 077 && "$bin/python" -c 'import json, sys; print(json.load(sys.stdin)["credential"])' <<< "$answer" > "$credential_file")
    echo "registered $id with central ($credential_file)"
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
    [ ! -f "$etc/pki/ca.key" ] || chmod 0600 "$etc/pki/ca.key"  # the CA's key: root's alone
    for credential in "$state"/*.cred; do
        [ ! -f "$credential" ] || { chown evcharging:evcharging "$credential" && chmod 0600 "$credential"; }
    done
}

if [ "$role" = token ]; then
    issue_token
    exit 0
fi
if [ "$configs_only" = 0 ]; then
    [ "$(id -u)" = 0 ] || fail "run as root (or use --configs-only)"
    install_package
fi
write_configs
if [ "$configs_only" = 1 ]; then
    exit 0
fi
install_user_and_units
for instance in "${instances[@]}"; do
    evd check -c "$etc/$instance.yaml" >/dev/null
done
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable evd.target "${instances[@]/#/evd@}"
    if [ "$start" = 1 ]; then
        systemctl restart evd.target "${instances[@]/#/evd@}"
        [ "$role" = central ] && issue_token
    fi
fi
echo "provisioned $role: ${instances[*]}"
