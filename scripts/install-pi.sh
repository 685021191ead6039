#!/usr/bin/env bash
# Install RetroGuard as a systemd service on Raspberry Pi OS Bookworm (Pi 3, 4, 5, Zero 2 W).
#
#   sudo ./scripts/install-pi.sh              install or upgrade (safe to run again)
#   sudo ./scripts/install-pi.sh --uninstall  remove the service (and the caregivers' unit, if
#                                             installed), its watchdog and i2c-dev boot settings
#                                             and /opt/retroguard (keeps config and databases;
#                                             --purge removes them, the user, the groups and
#                                             the broker setup this script made too)
#   ./scripts/install-pi.sh --dry-run [...]   print the steps, change nothing (no root needed)
#   --no-start                                enable the unit but do not (re)start it now
#   --no-hardware-watchdog                    leave systemd's RuntimeWatchdogSec alone (an
#                                             earlier run's setting of it is removed)
#   --caregiver                               also install what the caregivers' service needs
#                                             (the 'caregiver' extra and the PDF's fonts), to run
#                                             it on this Pi too; implied once its unit is installed
#   --broker                                  also run Mosquitto on this Pi (loopback only) with
#                                             the documented accounts and ACL: the device, the
#                                             caregiver service and Home Assistant each publish
#                                             and read only their own topics, a terminal's
#                                             'retroguard watch' (caregiver-watch) only reads
#                                             (docs/mqtt.md)
#   --caregiver-instance=caregiver-NAME       with --broker: the caregiver service instance's
#                                             account (docs/provider.md) gets the caregiver
#                                             block's ACL rules; remembered in
#                                             /etc/retroguard/caregiver-instances (one a line),
#                                             so every later run writes its block again
#
# Every step checks first and only does what is missing, so a second run changes nothing
# except the code in the venv and the unit file. Existing config is never overwritten.
# See docs/deployment.md.
set -euo pipefail

SERVICE=retroguard
CAREGIVER_SERVICE=retroguard-caregiver
SVC_USER=retroguard
# The paths can be moved for testing; the unit file names the defaults.
PREFIX=${RETROGUARD_PREFIX:-/opt/retroguard}
ETC_DIR=${RETROGUARD_ETC:-/etc/retroguard}
UNIT_DIR=${RETROGUARD_UNIT_DIR:-/etc/systemd/system}
SYSTEM_CONF_DIR=${RETROGUARD_SYSTEM_CONF_DIR:-/etc/systemd/system.conf.d}
MODULES_LOAD_DIR=${RETROGUARD_MODULES_LOAD_DIR:-/etc/modules-load.d}
STATE_DIR=${RETROGUARD_STATE_DIR:-/var/lib/retroguard}
VENV=$PREFIX/venv
CONFIG=$ETC_DIR/config.toml
WATCHDOG_DROPIN=$SYSTEM_CONF_DIR/60-retroguard-watchdog.conf
# i2c-dev (the /dev/i2c-* nodes) at every boot: systemd-modules-load reads this folder.
I2C_MODULES_CONF=$MODULES_LOAD_DIR/retroguard-i2c.conf
# The Pi's BCM2835 watchdog accepts at most about 15 s.
HW_WATCHDOG_SEC=10s
# espeak-ng renders the spoken prompts to WAV; alsa-utils' aplay plays them (docs/sessions.md).
APT_PACKAGES=(python3-venv python3-dev gcc i2c-tools espeak-ng alsa-utils)
# The caregivers' service's PDF report embeds these fonts (docs/caregiver.md, "Reports").
CAREGIVER_APT_PACKAGES=(fonts-liberation2 fonts-dejavu-core)
# --broker: Mosquitto and its files (docs/mqtt.md, "Mosquitto ACL"); movable for testing.
BROKER_APT_PACKAGES=(mosquitto mosquitto-clients)
MOSQUITTO_DIR=${RETROGUARD_MOSQUITTO_DIR:-/etc/mosquitto}
BROKER_PORT=${RETROGUARD_BROKER_PORT:-1883}
BROKER_CONF=$MOSQUITTO_DIR/conf.d/retroguard.conf
BROKER_ACL=$MOSQUITTO_DIR/retroguard.acl
BROKER_PASSWD=$MOSQUITTO_DIR/retroguard.passwd
# Each account's password, its first line (the config's mqtt.password_file names the device's).
DEVICE_MQTT_PASSWORD=$ETC_DIR/mqtt-password
CAREGIVER_MQTT_PASSWORD=$ETC_DIR/caregiver-mqtt-password
HOMEASSISTANT_MQTT_PASSWORD=$ETC_DIR/homeassistant-mqtt-password
# a terminal's `retroguard watch --username caregiver-watch --password-file` (read-only account)
WATCH_MQTT_PASSWORD=$ETC_DIR/caregiver-watch-mqtt-password
# The caregiver service instances' accounts (docs/provider.md), one a line: the ACL, which
# --broker writes again from docs/mqtt/mosquitto.acl at every run (Mosquitto's acl_file is one
# file: it cannot include another), gets a block for each, the caregiver block's rules.
CAREGIVER_INSTANCES=$ETC_DIR/caregiver-instances
# gpio and i2c for the pins and the sensor, audio for /dev/snd (the spoken prompts).
SVC_GROUPS=(gpio i2c audio)
# The groups of SVC_GROUPS this script had to create (one a line): --purge removes only these.
CREATED_GROUPS=$ETC_DIR/installer-created-groups
# The first line of every broker config this script writes: --purge removes only such a one.
BROKER_MARKER="# Written by RetroGuard's install-pi.sh --broker"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dry_run=0
action=install
purge=0
start=1
hw_watchdog=1
caregiver=0
broker=0
new_instances=()
# 0 once a kept config fails the check of the release just installed: the run then exits 1.
config_ok=1

usage() { sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

parse_args() {
    local arg
    for arg in "$@"; do
        case $arg in
            --dry-run) dry_run=1 ;;
            --uninstall) action=uninstall ;;
            --purge) purge=1 ;;
            --no-start) start=0 ;;
            --no-hardware-watchdog) hw_watchdog=0 ;;
            --caregiver) caregiver=1 ;;
            --broker) broker=1 ;;
            --caregiver-instance=*) new_instances+=("${arg#--caregiver-instance=}") ;;
            -h | --help) usage; exit 0 ;;
            *) echo "install-pi.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
        esac
    done
    if [ "$purge" -eq 1 ] && [ "$action" != uninstall ]; then
        echo "install-pi.sh: --purge only goes with --uninstall" >&2
        exit 2
    fi
    if [ "${#new_instances[@]}" -gt 0 ] && { [ "$broker" -eq 0 ] || [ "$action" != install ]; }; then
        echo "install-pi.sh: --caregiver-instance only goes with --broker" >&2
        exit 2
    fi
}

step_no=0
# step TEXT: announce what comes next (numbered, so a failed run says where it stopped).
step() {
    step_no=$((step_no + 1))
    printf '[%d] %s\n' "$step_no" "$*"
}
# note TEXT: a step that is already done, or a warning.
note() { printf '    %s\n' "$*"; }
# run CMD...: run a command, or print it in a dry run.
run() {
    if [ "$dry_run" -eq 1 ]; then
        printf '    +'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}
# write_file DEST MODE OWNER:GROUP: write stdin to DEST atomically, or print what would be written.
write_file() {
    local dest=$1 mode=$2 owner=$3 tmp
    if [ "$dry_run" -eq 1 ]; then
        printf '    + write %s (mode %s, %s)\n' "$dest" "$mode" "$owner"
        cat >/dev/null
        return
    fi
    tmp=$(mktemp "$dest.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    chown "$owner" "$tmp"
    mv -f "$tmp" "$dest"
}

require_root() {
    if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
        echo "install-pi.sh: run it with sudo (or try --dry-run)" >&2
        exit 1
    fi
}

check_platform() {
    step "Check the platform"
    local codename="" model=""
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    fi
    if [ "$codename" != bookworm ]; then
        note "warning: made for Raspberry Pi OS Bookworm; this is '${codename:-unknown}'"
    fi
    if [ -r /proc/device-tree/model ]; then
        model=$(tr -d '\0' </proc/device-tree/model)
    fi
    case $model in
        "Raspberry Pi"*) note "board: $model" ;;
        *) note "warning: not a Raspberry Pi (${model:-no device-tree model}); GPIO and I2C will not work here" ;;
    esac
}

# caregiver_wanted: 0 when the caregivers' service is to run on this Pi too (--caregiver, or its
# unit already installed: an upgrade must not leave it without its packages), else 1.
caregiver_wanted() {
    [ "$caregiver" -eq 1 ] || [ -e "$UNIT_DIR/$CAREGIVER_SERVICE.service" ]
}

install_packages() {
    local packages=("${APT_PACKAGES[@]}")
    if caregiver_wanted; then
        packages+=("${CAREGIVER_APT_PACKAGES[@]}")
    fi
    if [ "$broker" -eq 1 ]; then
        packages+=("${BROKER_APT_PACKAGES[@]}")
    fi
    step "Install Debian packages: ${packages[*]}"
    # One dpkg-query for them all (one each took a tenth of a second apiece); a package it does
    # not know is left out of its answer (exit status 1), and so is missing.
    local installed missing=() pkg
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
        awk '/ install ok installed$/ { print $1 }' || true)
    for pkg in "${packages[@]}"; do
        [[ $'\n'"$installed"$'\n' == *$'\n'"$pkg"$'\n'* ]] || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        note "already installed"
        return
    fi
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

enable_i2c() {
    step "Enable I2C (raspi-config nonint do_i2c 0) and load i2c-dev, now and at every boot"
    if ! command -v raspi-config >/dev/null 2>&1; then
        note "warning: raspi-config not found; enable I2C by hand (dtparam=i2c_arm=on in /boot/firmware/config.txt)"
    elif [ "$(raspi-config nonint get_i2c 2>/dev/null || echo 1)" = 0 ]; then
        note "already enabled"
    else
        run raspi-config nonint do_i2c 0
        note "I2C enabled: if /dev/i2c-1 does not appear, reboot once"
    fi
    # A modprobe lasts until the next boot. raspi-config also adds i2c-dev to /etc/modules,
    # but without it (another image, I2C enabled by hand) the sensor was gone after a reboot:
    # systemd-modules-load loads what this file names at every boot (--uninstall removes it).
    run install -d -m 0755 "$MODULES_LOAD_DIR"
    write_file "$I2C_MODULES_CONF" 0644 root:root <<EOF
# Written by RetroGuard's install-pi.sh: the I2C device nodes (/dev/i2c-*) for the
# MPU-6050, at every boot. See docs/deployment.md.
i2c-dev
EOF
    if [ -e /dev/i2c-1 ]; then
        note "/dev/i2c-1 present"
    else
        run modprobe i2c-dev
    fi
}

create_user() {
    step "Create system user '$SVC_USER' in groups ${SVC_GROUPS[*]}, and $STATE_DIR"
    local group
    for group in "${SVC_GROUPS[@]}"; do
        if ! getent group "$group" >/dev/null; then
            note "group '$group' missing (not Raspberry Pi OS?): creating it"
            run groupadd --system "$group"
            record_created_group "$group"
        fi
    done
    if id "$SVC_USER" >/dev/null 2>&1; then
        note "user exists"
    else
        run useradd --system --user-group --no-create-home --home-dir "$STATE_DIR" \
            --shell /usr/sbin/nologin --comment "RetroGuard fall-safety monitor" "$SVC_USER"
    fi
    for group in "${SVC_GROUPS[@]}"; do
        if id -nG "$SVC_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$group"; then
            note "already in $group"
        else
            run usermod -aG "$group" "$SVC_USER"
        fi
    done
    # The unit's StateDirectory= makes it at the first start, as this mode and owner; the doctor
    # needs it before (LG_WD and the event store, docs/deployment.md section 6): after --no-start
    # it was missing, and the doctor's gpio, event-store and imu-int lines failed for that alone.
    if [ -d "$STATE_DIR" ]; then
        note "$STATE_DIR exists"
    else
        run install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$STATE_DIR"
    fi
}

# record_created_group GROUP: note in CREATED_GROUPS that this script made GROUP, so that
# --purge removes it (and never a group the system or someone else made).
record_created_group() {
    local group=$1
    if grep -qxF -- "$group" "$CREATED_GROUPS" 2>/dev/null; then
        return
    fi
    if [ "$dry_run" -eq 1 ]; then
        printf '    + record %s in %s\n' "$group" "$CREATED_GROUPS"
        return
    fi
    install -d -m 0755 "$ETC_DIR"
    printf '%s\n' "$group" >>"$CREATED_GROUPS"
}

install_venv() {
    # The monitor needs only the 'pi' extra; the caregivers' web stack is the 'caregiver' one.
    local extras=pi
    if caregiver_wanted; then
        extras=pi,caregiver
    fi
    step "Install RetroGuard[$extras] into $VENV"
    run install -d -m 0755 "$PREFIX"
    if [ -x "$VENV/bin/python" ]; then
        note "venv exists: upgrading RetroGuard in it"
    else
        run python3 -m venv "$VENV"
    fi
    run "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # The versions the test suite ran with (constraints.txt, scripts/lock.sh): without them
    # a Pi got whatever newest release the bounds in pyproject.toml allow, untested. lgpio
    # and RPi.GPIO (the pi extra) are not in it: the tests run on simulated pins. -c does not
    # reach the isolated build environment, where mypyc compiles the detector: the same file
    # as --build-constraint pins the mypy it is built with (pip 25.3 or later, upgraded above).
    run "$VENV/bin/python" -m pip install --quiet --upgrade -c "$root/constraints.txt" \
        --build-constraint "$root/constraints.txt" "${root}[$extras]"
    # The unit's Documentation= and the wiring guide, next to the code that matches them.
    run rm -rf "$PREFIX/docs" "$PREFIX/wiring"
    run cp -r "$root/docs" "$root/wiring" "$PREFIX/"
}

install_config() {
    step "Write $CONFIG (mpu6050 IMU, gpiozero/lgpio pins) unless it exists"
    run install -d -m 0755 "$ETC_DIR"
    if [ -e "$CONFIG" ]; then
        note "kept: $CONFIG exists; checked with the release just installed"
        # An upgrade's release may refuse what the last one took (a key renamed, a range
        # narrowed): the monitor then fails at every start, the relay open, while the run
        # said "Done". Said here, and the run exits 1 after its last step.
        if [ "$dry_run" -eq 1 ]; then
            printf '    + %s config --check %s\n' "$VENV/bin/retroguard" "$CONFIG"
        elif ! "$VENV/bin/retroguard" config --check "$CONFIG"; then
            echo "install-pi.sh: $CONFIG fails the check of the release just installed (above): fix it, then: sudo systemctl restart $SERVICE" >&2
            config_ok=0
        fi
        return
    fi
    if [ "$dry_run" -eq 1 ]; then
        printf '    + %s config --example | set imu.backend="mpu6050", gpio.backend="gpiozero", gpio.pin_factory="lgpio"\n' "$VENV/bin/retroguard"
        printf '    + write %s (mode 0640, root:%s)\n' "$CONFIG" "$SVC_USER"
        printf '    + %s config --check %s\n' "$VENV/bin/retroguard" "$CONFIG"
        return
    fi
    "$VENV/bin/retroguard" config --example | hardware_config | broker_config |
        write_file "$CONFIG" 0640 "root:$SVC_USER"
    if ! grep -q '^backend = "mpu6050"' "$CONFIG" || ! grep -q '^backend = "gpiozero"' "$CONFIG"; then
        echo "install-pi.sh: could not set the hardware backends in $CONFIG; edit it by hand" >&2
        exit 1
    fi
    "$VENV/bin/retroguard" config --check "$CONFIG"
}

# hardware_config: the example config (stdin) with the real backends chosen. lgpio drives the
# GPIO of every supported board on Bookworm, the Pi 5 included (RPi.GPIO cannot drive a Pi 5).
hardware_config() {
    sed -e '/^\[imu\]/,/^\[/ s/^backend = .*/backend = "mpu6050"/' \
        -e '/^\[gpio\]/,/^\[/ s/^backend = .*/backend = "gpiozero"/' \
        -e '/^\[gpio\]/,/^\[/ s/^pin_factory = .*/pin_factory = "lgpio"/'
}

# broker_config: with --broker, the config (stdin) connects to the local broker with the device's
# account (its user name is the device id; a new config has the example's id).
broker_config() {
    if [ "$broker" -eq 0 ]; then
        cat
        return
    fi
    local device
    device=$(config_device_id)
    sed -e '/^\[mqtt\]/,/^\[/ s/^host = .*/host = "127.0.0.1"/' \
        -e "/^\\[mqtt\\]/,/^\\[/ s/^port = .*/port = $BROKER_PORT/" \
        -e "/^\\[mqtt\\]/,/^\\[/ s/^username = .*/username = \"$device\"/" \
        -e "/^\\[mqtt\\]/,/^\\[/ s|^password_file = .*|password_file = \"$DEVICE_MQTT_PASSWORD\"|"
}

# config_device_id: device.id of the config (the example's before one is written).
config_device_id() {
    local id=""
    if [ -r "$CONFIG" ]; then
        id=$(sed -n '/^\[device\]/,/^\[/ s/^id = "\(.*\)"$/\1/p' "$CONFIG" | head -n 1)
    fi
    echo "${id:-treadmill-1}"
}

# new_password: 32 random characters that need no quoting anywhere.
new_password() {
    head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32
}

# has_login NAME: 0 when the broker's password file has a line for NAME.
has_login() {
    cut -d: -f1 "$BROKER_PASSWD" 2>/dev/null | grep -qxF -- "$1"
}

# broker_account NAME PASSWORD_FILE OWNER:GROUP [MODE]: NAME's login in the broker's password
# file, its password in PASSWORD_FILE, made MODE (0640: its service reads it through the group)
# (both kept when both exist: a second run changes nothing but a kept file's mode and owner).
broker_account() {
    local name=$1 secret_file=$2 owner=$3 mode=${4:-0640} password plain
    secret_mode "$secret_file" "$mode" "$owner"
    if [ -s "$secret_file" ] && has_login "$name"; then
        note "account '$name' exists (password in $secret_file)"
        return
    fi
    if [ "$dry_run" -eq 1 ]; then
        printf '    + account %s: password to %s (mode %s, %s), hashed into %s\n' \
            "$name" "$secret_file" "$mode" "$owner" "$BROKER_PASSWD"
        return
    fi
    if [ -s "$secret_file" ]; then
        password=$(head -n 1 "$secret_file")
    else
        password=$(new_password)
        printf '%s\n' "$password" | write_file "$secret_file" "$mode" "$owner"
    fi
    # Hashed from a private file, never on a command line (which every local user can read);
    # the file goes however the step ends: a failed mosquitto_passwd (set -e) left the password
    # in clear text in /tmp.
    plain=$(mktemp)
    # shellcheck disable=SC2064  # expanded now: plain is this function's own
    trap "rm -f -- $(printf '%q' "$plain")" EXIT
    printf '%s:%s\n' "$name" "$password" >"$plain"
    if ! mosquitto_passwd -U "$plain"; then
        echo "install-pi.sh: mosquitto_passwd could not hash the password of account '$name' ($secret_file); $BROKER_PASSWD is unchanged" >&2
        exit 1
    fi
    touch "$BROKER_PASSWD"
    # the others' lines as they are (a device id may hold '.': no pattern matching)
    { awk -F: -v name="$name" '$1 != name' "$BROKER_PASSWD"; cat "$plain"; } |
        write_file "$BROKER_PASSWD" 0640 root:mosquitto
    rm -f "$plain"
    trap - EXIT
    note "account '$name': password in $secret_file"
}

# secret_mode FILE MODE OWNER:GROUP: a password file kept from before (an operator's own, or one
# an earlier release or a hand's chmod left otherwise) made MODE and OWNER:GROUP as the step
# writes a new one: kept as it was, a caregiver-watch password someone wrote 0644 stayed
# readable by every local user. Nothing to do when there is no file or it is already so.
secret_mode() {
    local file=$1 mode=$2 owner=$3 now
    [ -e "$file" ] || return 0
    now=$(stat -L -c '%04a %U:%G' -- "$file")
    [ "$now" != "$mode $owner" ] || return 0
    note "$file was ${now/ /, }: made $mode, $owner"
    run chmod "$mode" "$file"
    run chown "$owner" "$file"
}

# watch_account: caregiver-watch's login, for a terminal's `retroguard watch` (read-only: the
# ACL's block), its password root's alone (0600): no service reads it, a person runs the watch
# with sudo. A login an operator gave the account by hand (mosquitto_passwd, as docs/mqtt.md
# said before the installer made one) is kept while PASSWORD_FILE is missing: a new password
# would lock out the watch that uses theirs.
watch_account() {
    if [ ! -s "$WATCH_MQTT_PASSWORD" ] && has_login caregiver-watch; then
        note "account 'caregiver-watch' has a password set by hand: kept (to have this script keep it in $WATCH_MQTT_PASSWORD, write it there, mode 0600, and run again)"
        return
    fi
    broker_account caregiver-watch "$WATCH_MQTT_PASSWORD" root:root 0600
}

# refuse_cut_secrets FILE...: exits 1 naming a password file kept from before (an operator's)
# whose first line holds a ':': mosquitto_passwd -U cuts a password at its ':', so the account
# would take only what stands before it, and the service reading the whole line would be
# refused its login with no word of why.
refuse_cut_secrets() {
    local file
    for file in "$@"; do
        if [ -s "$file" ] && head -n 1 "$file" | grep -q ':'; then
            echo "install-pi.sh: the password in $file holds a ':', which Mosquitto's password file cannot keep (mosquitto_passwd cuts it there); write one without ':' (or empty the file for a new one) and run again" >&2
            exit 1
        fi
    done
}

# caregiver_instances: the instances' account names, one a line: CAREGIVER_INSTANCES' (blank
# lines and '#' comments left out), then each --caregiver-instance not among them. Exits 1
# naming a name that is not an instance's account.
caregiver_instances() {
    local name names=()
    if [ -r "$CAREGIVER_INSTANCES" ]; then
        while IFS= read -r name; do
            name=${name%%#*}
            name=${name//[[:space:]]/}
            [ -n "$name" ] && names+=("$name")
        done <"$CAREGIVER_INSTANCES"
    fi
    names+=("${new_instances[@]}")
    for name in "${names[@]}"; do
        # caregiver-watch is the read-only watch's account: the caregiver's rules would let it
        # send commands
        if ! [[ $name =~ ^caregiver-[a-z0-9][a-z0-9_-]{0,31}$ ]] || [ "$name" = caregiver-watch ]; then
            echo "install-pi.sh: caregiver instance '$name' (in $CAREGIVER_INSTANCES or --caregiver-instance) is not an instance's account: caregiver-<name>, lowercase letters, digits, '-' and '_', not caregiver-watch (docs/provider.md)" >&2
            exit 1
        fi
    done
    printf '%s\n' "${names[@]}" | awk 'NF && !seen[$0]++'
}

# broker_acl INSTANCES...: the documented ACL, then a user block for each instance with the
# caregiver block's rule lines as the documented ACL has them.
broker_acl() {
    local acl=$root/docs/mqtt/mosquitto.acl name
    cat "$acl"
    [ $# -gt 0 ] || return 0
    printf '\n# --- caregiver service instances (docs/provider.md): written by install-pi.sh --broker\n'
    printf '# from %s, each with the caregiver block'"'"'s rules ---\n' "$CAREGIVER_INSTANCES"
    for name in "$@"; do
        printf 'user %s\n' "$name"
        awk '/^user /{ mine = ($0 == "user caregiver") } mine && /^topic /' "$acl"
        printf '\n'
    done
}

# install_broker: with --broker, Mosquitto with the documented accounts and ACL, on loopback.
install_broker() {
    [ "$broker" -eq 1 ] || return 0
    local device instances listed
    device=$(config_device_id)
    step "Mosquitto on 127.0.0.1:$BROKER_PORT: accounts $device, caregiver, homeassistant and caregiver-watch, the documented ACL"
    case $device in
        caregiver | caregiver-* | homeassistant)
            echo "install-pi.sh: device.id '$device' is another account's name; choose another" >&2
            exit 1
            ;;
    esac
    refuse_cut_secrets "$DEVICE_MQTT_PASSWORD" "$CAREGIVER_MQTT_PASSWORD" \
        "$HOMEASSISTANT_MQTT_PASSWORD" "$WATCH_MQTT_PASSWORD"
    listed=$(caregiver_instances) || exit 1
    mapfile -t instances <<<"$listed"
    [ -n "$listed" ] || instances=()
    # the password files go in ETC_DIR, which install_config (after this step) would make
    run install -d -m 0755 "$ETC_DIR" "$MOSQUITTO_DIR" "$MOSQUITTO_DIR/conf.d"
    if [ "${#new_instances[@]}" -gt 0 ]; then
        # remembered: the next run (an upgrade) writes their blocks again
        { if [ -r "$CAREGIVER_INSTANCES" ]; then cat "$CAREGIVER_INSTANCES"; else
            echo "# Caregiver service instances' broker accounts (docs/provider.md), one a line:"
            echo "# install-pi.sh --broker gives each the caregiver block's ACL rules at every run."
        fi
        for name in "${new_instances[@]}"; do
            grep -qxF -- "$name" "$CAREGIVER_INSTANCES" 2>/dev/null || echo "$name"
        done; } | write_file "$CAREGIVER_INSTANCES" 0644 root:root
    fi
    if [ "${#instances[@]}" -gt 0 ]; then
        note "caregiver instances (${CAREGIVER_INSTANCES}): ${instances[*]}; their passwords are yours to set (mosquitto_passwd $BROKER_PASSWD NAME)"
    fi
    broker_acl "${instances[@]}" | write_file "$BROKER_ACL" 0640 root:mosquitto
    broker_account "$device" "$DEVICE_MQTT_PASSWORD" "root:$SVC_USER"
    broker_account caregiver "$CAREGIVER_MQTT_PASSWORD" "root:$SVC_USER"
    broker_account homeassistant "$HOMEASSISTANT_MQTT_PASSWORD" root:root
    watch_account
    write_file "$BROKER_CONF" 0644 root:root <<EOF
$BROKER_MARKER, again at every run. No login, no access;
# each account publishes and reads only what the ACL gives it (docs/mqtt.md, "Mosquitto
# ACL"): a device its own topics, the caregiver service its presence, commands and
# receipts, Home Assistant its buttons; caregiver-watch only reads. Accounts: $BROKER_PASSWD.
per_listener_settings false
allow_anonymous false
password_file $BROKER_PASSWD
acl_file $BROKER_ACL
# queued alerts and retained state survive a broker crash (persistence: Debian's default)
autosave_interval 1
# This Pi only. For Home Assistant or a caregiver service on another machine add a TLS
# listener (docs/mqtt.md, "Security"): passwords must not cross a network in clear.
listener $BROKER_PORT 127.0.0.1
# (a listener's own setting, so after its line: before any, it would open a second listener on
# every address, port 1883, for it alone) a client's id is its user name: no account can take
# over another's session
use_username_as_clientid true
EOF
    if [ -r "$CONFIG" ] && ! grep -q "^username = \"$device\"" "$CONFIG"; then
        note "warning: $CONFIG does not log in as '$device': set [mqtt] host = \"127.0.0.1\", port = $BROKER_PORT, username = \"$device\", password_file = \"$DEVICE_MQTT_PASSWORD\""
    fi
    note "caregiver service: [mqtt] username = \"caregiver\", password_file = \"$CAREGIVER_MQTT_PASSWORD\""
    note "watch: sudo $VENV/bin/retroguard watch --config $CONFIG --username caregiver-watch --password-file $WATCH_MQTT_PASSWORD"
    run systemctl enable mosquitto
    run systemctl restart mosquitto
}

install_hw_watchdog() {
    step "Hardware watchdog: systemd RuntimeWatchdogSec=$HW_WATCHDOG_SEC ($WATCHDOG_DROPIN)"
    if [ "$hw_watchdog" -eq 0 ]; then
        # A re-run leaves what its flags say: an earlier run's setting would keep PID 1
        # feeding the hardware watchdog, which this run was told to leave alone.
        if [ -e "$WATCHDOG_DROPIN" ]; then
            note "removing the earlier run's setting (--no-hardware-watchdog)"
            run rm -f "$WATCHDOG_DROPIN"
            run systemctl daemon-reexec
        else
            note "skipped (--no-hardware-watchdog)"
        fi
        return
    fi
    run install -d -m 0755 "$SYSTEM_CONF_DIR"
    write_file "$WATCHDOG_DROPIN" 0644 root:root <<EOF
# Written by RetroGuard's install-pi.sh: PID 1 feeds the Pi's hardware watchdog,
# which reboots the board if the kernel or systemd hangs. The BCM2835 watchdog
# accepts at most about 15 s. See docs/deployment.md.
[Manager]
RuntimeWatchdogSec=$HW_WATCHDOG_SEC
RebootWatchdogSec=2min
EOF
    run systemctl daemon-reexec
}

install_unit() {
    step "Install and enable $SERVICE.service"
    run install -m 0644 "$root/systemd/$SERVICE.service" "$UNIT_DIR/$SERVICE.service"
    run systemctl daemon-reload
    run systemctl enable "$SERVICE.service"
    if [ "$start" -eq 0 ]; then
        note "not started (--no-start): sudo systemctl start $SERVICE"
        return
    fi
    note "(re)starting: the stop relay opens now; press reset on the treadmill to arm"
    run systemctl restart "$SERVICE.service"
    # The caregivers' service runs from the venv just upgraded: left running, it would mix
    # the old code in memory with the new modules and templates it loads later. Alerts wait
    # at the broker (its persistent session) while it restarts.
    if [ -e "$UNIT_DIR/$CAREGIVER_SERVICE.service" ]; then
        note "restarting $CAREGIVER_SERVICE.service if it runs (its code was upgraded)"
        run systemctl try-restart "$CAREGIVER_SERVICE.service"
    fi
}

uninstall() {
    # The caregivers' unit too, when it was installed here (docs/caregiver.md): it runs from
    # the venv removed below, and left enabled it would fail and restart every 2 s, forever.
    local unit
    for unit in "$SERVICE.service" "$CAREGIVER_SERVICE.service"; do
        step "Stop and disable $unit"
        if [ -e "$UNIT_DIR/$unit" ]; then
            run systemctl disable --now "$unit"
            run rm -f "$UNIT_DIR/$unit"
            run systemctl daemon-reload
        else
            note "not installed"
        fi
    done
    step "Remove the hardware watchdog setting ($WATCHDOG_DROPIN)"
    if [ -e "$WATCHDOG_DROPIN" ]; then
        run rm -f "$WATCHDOG_DROPIN"
        run systemctl daemon-reexec
    else
        note "not present"
    fi
    step "Remove the i2c-dev boot setting ($I2C_MODULES_CONF)"
    if [ -e "$I2C_MODULES_CONF" ]; then
        # The module stays loaded until the next boot; raspi-config's I2C setting stays.
        run rm -f "$I2C_MODULES_CONF"
    else
        note "not present"
    fi
    step "Remove $PREFIX"
    if [ -e "$PREFIX" ]; then
        run rm -rf "$PREFIX"
    else
        note "not present"
    fi
    if [ "$purge" -eq 0 ]; then
        step "Keep config, event store and user"
        note "kept: $ETC_DIR, $STATE_DIR and user '$SVC_USER' (--uninstall --purge removes them)"
        if broker_conf_ours; then
            note "kept: the broker setup of --broker ($BROKER_CONF, $BROKER_ACL, $BROKER_PASSWD) and Mosquitto running (--uninstall --purge removes them)"
        fi
        return
    fi
    purge_broker
    step "Purge config, event store, user and the groups this script created"
    # read before the folder that holds the record goes
    local created=() group
    if [ -r "$CREATED_GROUPS" ]; then
        mapfile -t created <"$CREATED_GROUPS"
    fi
    run rm -rf "$ETC_DIR" "$STATE_DIR"
    if id "$SVC_USER" >/dev/null 2>&1; then
        run userdel "$SVC_USER"
    else
        note "user '$SVC_USER' not present"
    fi
    for group in "${SVC_GROUPS[@]}"; do
        purge_group "$group" "${created[@]}"
    done
}

# broker_conf_ours: 0 when BROKER_CONF exists and this script wrote it (its first line).
broker_conf_ours() {
    [ -f "$BROKER_CONF" ] && head -n 1 "$BROKER_CONF" | grep -qF -- "$BROKER_MARKER"
}

# mosquitto_other_listener: 0 when a Mosquitto config other than ours opens a listener (or
# sets the default one's port). With none, Mosquitto 2 falls back to its local-only mode:
# anonymous logins on loopback port 1883.
mosquitto_other_listener() {
    local file
    for file in "$MOSQUITTO_DIR/mosquitto.conf" "$MOSQUITTO_DIR"/conf.d/*.conf; do
        if [ ! -f "$file" ] || [ "$file" = "$BROKER_CONF" ]; then
            continue
        fi
        if grep -qE '^[[:space:]]*(listener|port)[[:space:]]' "$file"; then
            return 0
        fi
    done
    return 1
}

# purge_broker: remove what --broker wrote into Mosquitto's folder (its config, ACL and
# password file; the password files in ETC_DIR go with it below), only when the config there is
# the one it wrote. The mosquitto packages stay: Debian's, maybe in use before RetroGuard.
purge_broker() {
    step "Remove the broker setup of --broker ($BROKER_CONF, $BROKER_ACL, $BROKER_PASSWD)"
    if [ ! -e "$BROKER_CONF" ]; then
        note "not present"
        return
    fi
    if ! broker_conf_ours; then
        note "kept: $BROKER_CONF was not written by this script (no '$BROKER_MARKER' line); $BROKER_ACL and $BROKER_PASSWD kept with it"
        return
    fi
    run rm -f "$BROKER_CONF" "$BROKER_ACL" "$BROKER_PASSWD"
    if mosquitto_other_listener; then
        note "Mosquitto has another listener: restarted (if it runs) without RetroGuard's accounts"
        run systemctl try-restart mosquitto
    else
        note "ours was Mosquitto's only listener: stopped and disabled (restarted, it would accept anonymous logins on 127.0.0.1:1883); the package stays (apt purge mosquitto removes it)"
        run systemctl disable --now mosquitto
    fi
}

# purge_group GROUP CREATED...: remove GROUP if this script created it (named in CREATED) and
# no one but the service user is in it (as a member or as their primary group); else say why not.
purge_group() {
    local group=$1 entry gid members user
    shift
    entry=$(getent group "$group" || true)
    [ -n "$entry" ] || return 0
    if ! printf '%s\n' "$@" | grep -qxF -- "$group"; then
        note "kept group '$group': not created by this script"
        return
    fi
    gid=$(cut -d: -f3 <<<"$entry")
    members=$(cut -d: -f4 <<<"$entry" | tr ',' '\n' | grep -vxF -- "$SVC_USER" | paste -sd, - || true)
    user=$(getent passwd | awk -F: -v gid="$gid" -v svc="$SVC_USER" '$4 == gid && $1 != svc { print $1 }' | paste -sd, - || true)
    if [ -n "$members$user" ]; then
        note "kept group '$group' (created by this script): still has members ${members:+$members}${members:+${user:+,}}${user:+$user}"
        return
    fi
    run groupdel "$group"
}

main() {
    parse_args "$@"
    require_root
    if [ "$dry_run" -eq 1 ]; then
        echo "install-pi.sh: dry run, nothing is changed"
    fi
    if [ "$action" = uninstall ]; then
        uninstall
        return
    fi
    check_platform
    install_packages
    enable_i2c
    create_user
    install_venv
    # the broker's accounts first: a new config names the device's password file, which its
    # check reads
    install_broker
    install_config
    install_hw_watchdog
    install_unit
    if [ "$config_ok" -eq 0 ]; then
        echo "install-pi.sh: installed, but $CONFIG fails its check: fix it, then: sudo systemctl restart $SERVICE" >&2
        exit 1
    fi
    step "Done: check with 'systemctl status $SERVICE' and 'journalctl -u $SERVICE -f'"
}

# Sourcing the script (as the tests do) defines the functions without running anything.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
