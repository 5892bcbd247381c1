#!/usr/bin/env bash
# The hosted Space's image, built from the project's Dockerfile and run for real: `make space-test`, which .ci/run
# runs after `make test`.
#
# Docker Hub is out of reach on the machines this project runs on, so python:3.11-slim cannot be pulled: the
# base image is made locally with debootstrap (Debian bookworm, whose Python is 3.11 as well) and passed as the
# BASE_IMAGE build argument; PyPI stands in for the CPU torch index (TORCH_INDEX), which makes this image
# CUDA-sized. The container then runs with no network at all and must answer its health endpoint as uid 1000,
# render every page with the shipped weights and the data fetched at build time, and turn healthy.
#
# Skips (exit 0, with the reason) where docker cannot run or the disk is short, except under CI (CI set, as the
# browser tests read it), where that is a broken setup and fails; fails on anything else.
# Kept between runs, within about 8 GB: the base image, each named build stage and the newest test image.
set -euo pipefail
cd "$(dirname "$0")/.."

# All of it in one function, read whole before anything runs. Otherwise bash reads the file as it goes, from an
# offset that an edit (or anything else moving it) shifts: one run here went on from the middle of a comment
# ("line 119: lds: command not found").
main() {
    SUITE=bookworm
    BASE_PACKAGES=python3,python3-pip,python-is-python3,ca-certificates
    REPO=genmodels-space   # every image this test keeps is a tag of it
    IMAGE=$REPO:test
    CONTAINER=genmodels-space-smoke-$$
    TORCH_INDEX=${SPACE_TORCH_INDEX:-https://pypi.org/simple}
    MIN_FREE_GB=${SPACE_MIN_FREE_GB:-16}   # a cold build peaked at 14 GB of extra disk here
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    WORK=$(mktemp -d -t genmodels-space.XXXXXX)
    STARTED=$(date +%s)
    DOCKERD_PID=

    say() { echo "space-test: $*"; }
    # In CI a Space check that cannot run is a broken setup, not a pass: CI would otherwise go green without
    # building anything.
    skip() {
        [ -z "${CI:-}" ] || fail "cannot run under CI (CI=$CI): $*"
        say "SKIPPED: $*"; exit 0
    }
    fail() { say "FAILED: $*" >&2; exit 1; }
    elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

    cleanup() {
        local status=$?
        [ -n "${DOCKER:-}" ] && $DOCKER rm -f "$CONTAINER" >/dev/null 2>&1 || true
        if [ -n "$DOCKERD_PID" ]; then   # only the engine this run started, and no other
            $SUDO kill -TERM "$DOCKERD_PID" 2>/dev/null || true
            for _ in $(seq 60); do $SUDO kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        fi
        # The work folder is ours, but debootstrap (run as root) fills it: sudo only where plain rm cannot, so a user
        # without sudo still gets the exit status of the run, not that of a missing sudo.
        rm -rf "$WORK" 2>/dev/null || $SUDO rm -rf "$WORK"
        exit "$status"
    }
    trap cleanup EXIT

    # 1. docker.io and debootstrap, from Debian, when missing.
    if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
        [ -z "$SUDO" ] || sudo -n true 2>/dev/null \
            || skip "docker.io and debootstrap are missing and there is no root or sudo to install them"
        { $SUDO apt-get update -qq \
            && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap; } \
            >"$WORK/apt.log" 2>&1 || skip "cannot install docker.io and debootstrap: $(tail -n 1 "$WORK/apt.log")"
    fi

    # 2. A Docker engine: the one already running, else one of our own that leaves the host's network alone (no
    #    bridge, no iptables rules, no IP forwarding). Builds use the host's network; the app's container has none.
    #    Niced, so the build and the container (its children) yield to the training runs that share this CPU.
    # The legacy builder: Debian's docker.io has no buildx, which newer clients need for BuildKit.
    export DOCKER_BUILDKIT=0
    DOCKER=docker
    docker info >/dev/null 2>&1 || [ -z "$SUDO" ] || DOCKER="sudo --preserve-env=DOCKER_BUILDKIT docker"
    if ! $DOCKER info >/dev/null 2>&1; then
        t=$(date +%s)
        $SUDO nice -n 10 dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
            >"$WORK/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        until $DOCKER info >/dev/null 2>&1; do
            $SUDO kill -0 "$DOCKERD_PID" 2>/dev/null \
                || { DOCKERD_PID=; skip "dockerd cannot run here: $(tail -n 2 "$WORK/dockerd.log")"; }
            [ $(( $(date +%s) - t )) -lt 60 ] \
                || skip "dockerd did not answer within 60 s: $(tail -n 2 "$WORK/dockerd.log")"
            sleep 0.5
        done
        say "started dockerd (pid $DOCKERD_PID) in $(elapsed "$t")"
    fi

    root_dir=$($DOCKER info --format '{{.DockerRootDir}}')
    free_gb=$(df --output=avail -BG "$root_dir" | tail -n 1 | tr -dc 0-9)
    [ "$free_gb" -ge "$MIN_FREE_GB" ] \
        || skip "$free_gb GB free under $root_dir, the build needs $MIN_FREE_GB GB (SPACE_MIN_FREE_GB)"

    # 3. The base image: Debian's minimal system with Python 3.11 and pip, carrying this machine's CA certificates
    #    (a TLS-inspecting proxy's among them) and pip index, so pip and npm inside the build reach the registries
    #    as this machine does. Named by a hash of its recipe, so a changed recipe or certificate builds a new one.
    CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
    PIP_INDEX=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
    MIRROR=$(apt-get indextargets --format '$(REPO_URI)' "Release: $SUITE" 'Component: main' 'Identifier: Packages' \
        2>/dev/null | awk 'NR == 1')
    MIRROR=${MIRROR:-http://deb.debian.org/debian/}
    recipe=$( { echo "$SUITE $BASE_PACKAGES $MIRROR $PIP_INDEX"; cat "$CA_BUNDLE"; } | sha256sum | cut -c1-12)
    BASE_IMAGE=$REPO:base-$SUITE-$recipe
    if ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        t=$(date +%s)
        rootfs=$WORK/rootfs
        $SUDO debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
            >"$WORK/debootstrap.log" 2>&1 || fail "debootstrap failed: $(tail -n 3 "$WORK/debootstrap.log")"
        $SUDO mkdir -p "$rootfs/usr/local/share/ca-certificates/host"
        # One certificate per file, as update-ca-certificates expects; it then rebuilds the bundle inside.
        $SUDO awk -v dir="$rootfs/usr/local/share/ca-certificates/host" '
            /BEGIN CERTIFICATE/ {f = sprintf("%s/%03d.crt", dir, ++n)}
            f {print > f}
            /END CERTIFICATE/ {close(f); f = ""}' "$CA_BUNDLE"
        $SUDO chroot "$rootfs" update-ca-certificates >"$WORK/ca.log" 2>&1 \
            || fail "update-ca-certificates: $(tail -n 3 "$WORK/ca.log")"
        if [[ $PIP_INDEX == http* ]]; then
            printf '[global]\nindex-url = %s\n' "$PIP_INDEX" | $SUDO tee "$rootfs/etc/pip.conf" >/dev/null
        fi
        # python:3.11-slim's Python is not Debian's and has no PEP 668 marker: pip installs with --user there.
        $SUDO rm -rf "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED \
            "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        # PATH and LANG as python:3.11-slim sets them (the Dockerfile extends PATH); Node.js takes its extra CAs
        # from the bundle.
        $SUDO tar -C "$rootfs" -c . | $DOCKER import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change "ENV NODE_EXTRA_CA_CERTS=$CA_BUNDLE" \
            --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
        $SUDO rm -rf "$rootfs"
        say "base image $BASE_IMAGE made in $(elapsed "$t")"
    fi

    # 4. The project's Dockerfile, as the Space builds it but for the two build arguments. Each named stage gets a
    #    tag of its own, so its cache outlives the final image's (the legacy builder keeps no other cache).
    t=$(date +%s)
    previous=$($DOCKER image ls -q "$REPO")   # newest first: a child goes before its parent
    keep=("$BASE_IMAGE" "$IMAGE")
    build=(build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "TORCH_INDEX=$TORCH_INDEX")
    built() {
        $DOCKER "${build[@]}" "$@" . >>"$WORK/build.log" 2>&1 \
            || { tail -n 40 "$WORK/build.log"; fail "docker build failed (the end of its log is above)"; }
    }
    for stage in $(sed -n 's/^FROM .* AS \([A-Za-z0-9_.-]*\)$/\1/p' Dockerfile); do
        keep+=("$REPO:stage-$stage")
        built --target "$stage" -t "$REPO:stage-$stage"
    done
    built -t "$IMAGE"
    # The cache is what `keep` names: other tags of $REPO go, then what the tags named before, with the layers
    # no other image uses. One that something still uses (a container started by hand) stays, with a note.
    uncache() { $DOCKER rmi "$1" >/dev/null 2>&1 || say "kept $1, still in use"; }
    for ref in $($DOCKER image ls "$REPO" --format '{{.Repository}}:{{.Tag}}'); do
        [[ " ${keep[*]} " == *" $ref "* ]] || uncache "$ref"
    done
    current=$($DOCKER image ls -q "$REPO")
    for old in $previous; do
        grep -qx "$old" <<<"$current" || uncache "$old"
    done
    size=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
    say "built $IMAGE in $(elapsed "$t"): $(( size / 1000000 )) MB"

    # 5. The container, with no network at all: everything it shows must already be inside.
    t=$(date +%s)
    $DOCKER run -d --name "$CONTAINER" --network none "$IMAGE" >/dev/null
    health="import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2)"
    until $DOCKER exec "$CONTAINER" python -c "$health" 2>/dev/null; do
        [ "$($DOCKER inspect -f '{{.State.Running}}' "$CONTAINER")" = true ] \
            || { $DOCKER logs "$CONTAINER" 2>&1 | tail -n 20; fail "the container stopped before answering"; }
        [ $(( $(date +%s) - t )) -lt 180 ] || fail "no answer on /_stcore/health within 180 s"
        sleep 0.5
    done
    say "docker run -> /_stcore/health answers: $(elapsed "$t")"

    uid=$($DOCKER exec "$CONTAINER" awk '/^Uid:/ {print $2}' /proc/1/status)
    [ "$uid" = 1000 ] || fail "the app runs as uid $uid, not 1000 as on a Space"

    # The pages render while Docker's HEALTHCHECK, whose first probe comes 30 s after the start, is awaited.
    p=$(date +%s)
    $DOCKER exec -i "$CONTAINER" python - <tests/space_pages.py >"$WORK/pages.log" 2>&1 &
    pages=$!
    until [ "$($DOCKER inspect -f '{{.State.Health.Status}}' "$CONTAINER")" = healthy ]; do
        [ $(( $(date +%s) - t )) -lt 180 ] || fail "Docker's HEALTHCHECK is not healthy after 180 s"
        sleep 1
    done
    say "docker run -> HEALTHCHECK healthy: $(elapsed "$t")"
    wait "$pages" || { cat "$WORK/pages.log"; fail "a page failed inside the container (above)"; }
    cat "$WORK/pages.log"
    say "every page rendered inside the container in $(elapsed "$p")"

    # Startup made no call out: Streamlit prints an External URL, or warns that it found none, when it looks one up.
    log=$($DOCKER logs "$CONTAINER" 2>&1)
    for bad in "External URL" "Did not auto detect external IP" "Traceback"; do
        [[ $log != *"$bad"* ]] || { echo "$log" | tail -n 30; fail "the server log says '$bad'"; }
    done

    say "passed in $(elapsed "$STARTED")"
}

main "$@"; exit
