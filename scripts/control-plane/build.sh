#!/usr/bin/env bash
# Builds a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) plus kubectl, kwok, helm, kube-bench
# and promtool from Go modules, and caches it in a versioned folder.
#
# Usage:
#   scripts/control-plane/build.sh              build what is missing
#   scripts/control-plane/build.sh --tools      build only helm and promtool (what the fast
#                                               test tier runs: chart rendering, alert rules)
#   scripts/control-plane/build.sh --print-dir  print the cache dir, build nothing
#   scripts/control-plane/build.sh --print-kubernetes-version
#
# The cache dir is the LAST line printed on stdout (progress goes to stderr), so
# callers can do:  dir="$(scripts/control-plane/build.sh | tail -n 1)"
#
# Layout of the cache dir:
#   bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,kwok,helm,kube-bench,promtool}
#   promtool.version  the Prometheus module version bin/promtool was built from
#   kwok-stages/      kwok's stock stage YAMLs (kustomize/stage/ of the kwok module)
#   kube-bench-cfg/   kube-bench's cfg/ folder
#   manifest.txt      written only when every step succeeded
#
# Only the Go module proxy is used (through the go command). The Go module
# cache stays in its default place, so a re-run after deleting the cache dir
# only recompiles.
set -euo pipefail

# ---------------------------------------------------------------- versions
K8S_VERSION="v1.36.3"
ETCD_VERSION="v3.6.16"
KWOK_VERSION="v0.8.0"
HELM_VERSION="v3.21.4"
KUBE_BENCH_VERSION="v0.15.6"
# Prometheus v3.16.0 (its Go module is versioned v0.<major><minor>.<patch>). Not in the
# cache dir's name: a cache built before promtool was added gains it in place (its own
# step and version marker) instead of rebuilding Kubernetes.
PROMETHEUS_VERSION="v0.316.0"
# Fixed build date stamped into the Kubernetes binaries (reproducible builds).
BUILD_DATE="2026-01-01T00:00:00Z"

# Staging modules are versioned v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>.
K8S_STAGING_VERSION="v0.${K8S_VERSION#v1.}"
K8S_MAJOR="1"
K8S_MINOR="$(echo "${K8S_VERSION#v}" | cut -d. -f2)"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/compliance-scan/control-plane"
NAME="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}-helm-${HELM_VERSION}-kube-bench-${KUBE_BENCH_VERSION}"
DIR="${CACHE_ROOT}/${NAME}"
BIN="${DIR}/bin"
WORK="${DIR}/work"
MANIFEST="${DIR}/manifest.txt"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

TOOLS_ONLY=0
case "${1:-}" in
  --print-dir) echo "${DIR}"; exit 0 ;;
  --print-kubernetes-version) echo "${K8S_VERSION}"; exit 0 ;;
  --tools) TOOLS_ONLY=1 ;;
  -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument: $1 (use --tools, --print-dir, --print-kubernetes-version or no argument)" ;;
esac

CURRENT_STEP="setup"
on_exit() {
  local rc=$?
  if [[ ${rc} -ne 0 ]]; then
    printf '[control-plane] FAILED: step "%s" failed (exit %s); see the output above. The cache was not marked complete.\n' \
      "${CURRENT_STEP}" "${rc}" >&2
  fi
}
trap on_exit EXIT

# ---------------------------------------------------------------- toolchain
GO="$(command -v go || true)"
if [[ -z "${GO}" && -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; fi
[[ -n "${GO}" ]] || die "no go toolchain found (looked for 'go' on PATH and /usr/local/go/bin/go)"

# Never fetch another toolchain; build static binaries; no VCS stamping (there is none).
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath -pgo=off"
export GO111MODULE=on
# Lower priority for the compilers so the machine stays responsive.
NICE=(nice -n 10)

ALL_BINS=(etcd kwok helm kube-bench kube-apiserver kube-controller-manager kube-scheduler kubectl promtool)

# promtool's marker holds the module version, so changing PROMETHEUS_VERSION rebuilds only
# promtool (all_present below reads it, hence defined here).
PROMTOOL_MARKER="${DIR}/promtool.version"
build_promtool_done() { [[ -x "${BIN}/promtool" && "$(cat "${PROMTOOL_MARKER}" 2>/dev/null)" == "${PROMETHEUS_VERSION}" ]]; }

tools_present() { [[ -x "${BIN}/helm" ]] && build_promtool_done; }

all_present() {
  local b
  for b in "${ALL_BINS[@]}"; do [[ -x "${BIN}/${b}" ]] || return 1; done
  [[ -d "${DIR}/kwok-stages" && -d "${DIR}/kube-bench-cfg" ]] || return 1
  build_promtool_done
}

# Nothing to do when what was asked for is complete (the cheap check, before the lock).
up_to_date() {
  if [[ ${TOOLS_ONLY} -eq 1 ]]; then tools_present; else [[ -f "${MANIFEST}" ]] && all_present; fi
}

if up_to_date; then
  log "up to date: ${DIR}"
  echo "${DIR}"
  exit 0
fi

mkdir -p "${BIN}" "${WORK}"

# One build at a time per cache dir (parallel test runs may all call this).
exec 9>"${DIR}/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  # Another run may have finished while we waited.
  if up_to_date; then
    log "up to date: ${DIR}"
    echo "${DIR}"
    exit 0
  fi
fi

log "go: $("${GO}" version)   cores: $(nproc 2>/dev/null || echo '?')"
log "cache dir: ${DIR}"

TOTAL_START=$(date +%s)
declare -a TIMINGS=()

# run_step NAME FUNC: runs FUNC unless its outputs exist (FUNC_done returns 0).
run_step() {
  local name="$1" fn="$2" start end
  CURRENT_STEP="${name}"
  if "${fn}_done"; then
    log "step ${name}: already built, skipped"
    TIMINGS+=("${name}=skipped")
    return 0
  fi
  log "step ${name}: building ..."
  start=$(date +%s)
  "${fn}"
  "${fn}_done" || die "step ${name}: finished but its outputs are missing"
  end=$(date +%s)
  log "step ${name}: done in $((end - start)) s"
  TIMINGS+=("${name}=$((end - start))s")
}

# Field of `go mod download -json` output (one "Key": "value" per line).
json_field() {
  sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" | head -n 1
}

module_dir() {
  local out d
  out="$("${GO}" mod download -json "$1")" || die "go mod download $1 failed"
  d="$(printf '%s\n' "${out}" | json_field Dir)"
  [[ -n "${d}" && -d "${d}" ]] || die "go mod download $1 gave no module dir"
  echo "${d}"
}

# Builds PKG@VERSION in a throwaway wrapper module (`go get -tool`, then
# `go build`). Unlike `go install PKG@VERSION`, this does not need the proxy's
# version list of the module (go install reads it to check for deprecation,
# and some proxies answer 403 for it: kube-bench on ours).
wrapper_build() {
  local pkg="$1" version="$2" out="$3" ldflags="$4" w
  w="$(mktemp -d "${WORK}/wrap.XXXXXX")"
  (
    cd "${w}"
    "${GO}" mod init "compliance-scan.local/control-plane/${out}" 2>/dev/null
    "${GO}" get -tool "${pkg}@${version}"
    "${NICE[@]}" "${GO}" build -ldflags="${ldflags}" -o "${w}/${out}" "${pkg}"
  )
  [[ -x "${w}/${out}" ]] || die "go build ${pkg} produced no ${out}"
  mv -f "${w}/${out}" "${BIN}/${out}"
  rm -rf "${w}"
}

# go install PKG@VERSION into a temp GOBIN, then move the binary in place (a
# half-written binary never lands in bin/). Falls back to wrapper_build.
go_install() {
  local pkg="$1" version="$2" out="$3" ldflags="$4" tmp
  tmp="$(mktemp -d "${WORK}/gobin.XXXXXX")"
  if GOBIN="${tmp}" "${NICE[@]}" "${GO}" install -ldflags="${ldflags}" "${pkg}@${version}" \
      && [[ -x "${tmp}/${out}" ]]; then
    mv -f "${tmp}/${out}" "${BIN}/${out}"
  else
    log "go install ${pkg}@${version} failed; retrying through a wrapper module"
    wrapper_build "${pkg}" "${version}" "${out}" "${ldflags}"
  fi
  rm -rf "${tmp}"
}

# ---------------------------------------------------------------- etcd
build_etcd_done() { [[ -x "${BIN}/etcd" ]]; }
build_etcd() {
  local w="${WORK}/etcd" t0=${SECONDS}
  rm -rf "${w}"; mkdir -p "${w}"
  (
    cd "${w}"
    "${GO}" mod init compliance-scan.local/control-plane/etcd 2>/dev/null
    "${GO}" get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
    log "etcd: modules resolved in $((SECONDS - t0)) s"
    "${NICE[@]}" "${GO}" build -ldflags="-s -w" -o "${w}/etcd" go.etcd.io/etcd/server/v3
  )
  mv -f "${w}/etcd" "${BIN}/etcd"
}

# ---------------------------------------------------------------- kwok
build_kwok_done() { [[ -x "${BIN}/kwok" && -d "${DIR}/kwok-stages" ]]; }
build_kwok() {
  if [[ ! -x "${BIN}/kwok" ]]; then
    go_install sigs.k8s.io/kwok/cmd/kwok "${KWOK_VERSION}" kwok \
      "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}"
  fi
  local mod
  mod="$(module_dir "sigs.k8s.io/kwok@${KWOK_VERSION}")"
  [[ -d "${mod}/kustomize/stage" ]] || die "kwok module has no kustomize/stage folder (${mod})"
  rm -rf "${DIR}/kwok-stages.tmp"
  cp -R "${mod}/kustomize/stage" "${DIR}/kwok-stages.tmp"
  chmod -R u+w "${DIR}/kwok-stages.tmp"   # the module cache is read-only
  rm -rf "${DIR}/kwok-stages"
  mv "${DIR}/kwok-stages.tmp" "${DIR}/kwok-stages"
}

# ---------------------------------------------------------------- helm
build_helm_done() { [[ -x "${BIN}/helm" ]]; }
build_helm() {
  go_install helm.sh/helm/v3/cmd/helm "${HELM_VERSION}" helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
}

# ---------------------------------------------------------------- kube-bench
build_kube_bench_done() { [[ -x "${BIN}/kube-bench" && -d "${DIR}/kube-bench-cfg" ]]; }
build_kube_bench() {
  if [[ ! -x "${BIN}/kube-bench" ]]; then
    # Not `go install`: the proxy refuses kube-bench's version list (403), which
    # go install needs for its deprecation check. See wrapper_build.
    wrapper_build github.com/aquasecurity/kube-bench "${KUBE_BENCH_VERSION}" kube-bench \
      "-s -w -X github.com/aquasecurity/kube-bench/cmd.KubeBenchVersion=${KUBE_BENCH_VERSION}"
  fi
  local mod
  mod="$(module_dir "github.com/aquasecurity/kube-bench@${KUBE_BENCH_VERSION}")"
  [[ -d "${mod}/cfg" ]] || die "kube-bench module has no cfg folder (${mod})"
  rm -rf "${DIR}/kube-bench-cfg.tmp"
  cp -R "${mod}/cfg" "${DIR}/kube-bench-cfg.tmp"
  chmod -R u+w "${DIR}/kube-bench-cfg.tmp"
  rm -rf "${DIR}/kube-bench-cfg"
  mv "${DIR}/kube-bench-cfg.tmp" "${DIR}/kube-bench-cfg"
}

# ---------------------------------------------------------------- promtool
# Runs `promtool check rules` / `promtool test rules` on deploy/monitoring (cluster tier).
build_promtool() {
  local release="${PROMETHEUS_VERSION#v0.}" major minor patch
  # v0.316.0 -> 3.16.0 for promtool --version.
  major="${release:0:1}"; minor="$(echo "${release:1}" | cut -d. -f1)"; patch="$(echo "${release}" | cut -d. -f2)"
  rm -f "${PROMTOOL_MARKER}"
  go_install github.com/prometheus/prometheus/cmd/promtool "${PROMETHEUS_VERSION}" promtool \
    "-s -w -X github.com/prometheus/common/version.Version=${major}.$((10#${minor})).${patch}"
  echo "${PROMETHEUS_VERSION}" > "${PROMTOOL_MARKER}"
}

# ---------------------------------------------------------------- kubernetes
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler)
build_kubernetes_done() {
  local b
  for b in "${K8S_BINS[@]}"; do [[ -x "${BIN}/${b}" ]] || return 1; done
}

# Creates in the current dir a wrapper module that requires k8s.io/kubernetes and points
# each staging module at its published v0.x version (k8s.io/kubernetes' own go.mod
# replaces them with ./staging/... paths, so it cannot be built with `go install
# @version`), and sets K8S_LDFLAGS (the version stamps). Callers then `go get -tool` and
# `go build` the commands they need.
kubernetes_wrapper_module() {
  local name="$1" info gomod commit staging godebug
  info="$("${GO}" mod download -json "k8s.io/kubernetes@${K8S_VERSION}")" \
    || die "go mod download k8s.io/kubernetes@${K8S_VERSION} failed"
  gomod="$(printf '%s\n' "${info}" | json_field GoMod)"
  [[ -n "${gomod}" && -f "${gomod}" ]] || die "no go.mod path for k8s.io/kubernetes@${K8S_VERSION}"
  # The release tag's commit, when the proxy reports it (Origin.Hash).
  commit="$(printf '%s\n' "${info}" | json_field Hash)"

  # Every "X => ./staging/..." replace, in block or single-line form.
  staging="$(awk '{ for (i = 2; i <= NF; i++) if ($i == "=>" && $(i+1) ~ /^\.\/staging\//) print $(i-1) }' "${gomod}" | sort -u)"
  [[ -n "${staging}" ]] || die "found no staging replaces in ${gomod}"
  # godebug directives, single-line or block form.
  godebug="$(awk '
    /^godebug[[:space:]]*\(/ { inblock = 1; print; next }
    inblock { print; if ($0 ~ /^\)/) inblock = 0; next }
    /^godebug[[:space:]]/ { print }' "${gomod}")"

  "${GO}" mod init "compliance-scan.local/control-plane/${name}" 2>/dev/null
  if [[ -n "${godebug}" ]]; then printf '\n%s\n' "${godebug}" >> go.mod; fi
  "${GO}" mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
  local args=() m
  for m in ${staging}; do args+=("-replace=${m}=${m}@${K8S_STAGING_VERSION}"); done
  "${GO}" mod edit "${args[@]}"
  "${GO}" mod edit -fmt
  log "${name}: $(echo "${staging}" | wc -l) staging modules replaced with ${K8S_STAGING_VERSION}; godebug: ${godebug:-none}"

  local p
  K8S_LDFLAGS="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    K8S_LDFLAGS+=" -X ${p}.gitVersion=${K8S_VERSION}"
    K8S_LDFLAGS+=" -X ${p}.gitMajor=${K8S_MAJOR}"
    K8S_LDFLAGS+=" -X ${p}.gitMinor=${K8S_MINOR}"
    K8S_LDFLAGS+=" -X ${p}.gitTreeState=clean"
    K8S_LDFLAGS+=" -X ${p}.buildDate=${BUILD_DATE}"
    if [[ -n "${commit}" ]]; then K8S_LDFLAGS+=" -X ${p}.gitCommit=${commit}"; fi
  done
}

build_kubernetes() {
  local w="${WORK}/kubernetes" b t0=${SECONDS}
  rm -rf "${w}"; mkdir -p "${w}"
  (
    cd "${w}"
    kubernetes_wrapper_module kubernetes
    "${GO}" get -tool \
      "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-scheduler@${K8S_VERSION}"

    log "kubernetes: modules resolved in $((SECONDS - t0)) s; compiling (the long part) ..."
    mkdir -p "${w}/out"
    # One go build for the three, so their shared packages compile once.
    "${NICE[@]}" "${GO}" build -ldflags="${K8S_LDFLAGS}" -o "${w}/out/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler
    log "kubernetes: compiled in $((SECONDS - t0)) s since the step started"
  )
  for b in "${K8S_BINS[@]}"; do
    [[ -x "${w}/out/${b}" ]] || die "go build produced no ${b}"
  done
  for b in "${K8S_BINS[@]}"; do mv -f "${w}/out/${b}" "${BIN}/${b}"; done
}

# ---------------------------------------------------------------- kubectl
# For the tests that run what users paste (docs/operations.md, the chart's NOTES.txt) and
# `kubectl apply -k` then `--server-side`. Its own step, after the Kubernetes one (whose
# packages it mostly shares), so a cache built before kubectl was added gains it in place.
build_kubectl_done() { [[ -x "${BIN}/kubectl" ]]; }
build_kubectl() {
  local w="${WORK}/kubectl"
  rm -rf "${w}"; mkdir -p "${w}"
  (
    cd "${w}"
    kubernetes_wrapper_module kubectl
    "${GO}" get -tool "k8s.io/kubernetes/cmd/kubectl@${K8S_VERSION}"
    "${NICE[@]}" "${GO}" build -ldflags="${K8S_LDFLAGS}" -o "${w}/kubectl" k8s.io/kubernetes/cmd/kubectl
  )
  [[ -x "${w}/kubectl" ]] || die "go build produced no kubectl"
  mv -f "${w}/kubectl" "${BIN}/kubectl"
}

# ---------------------------------------------------------------- run
if [[ ${TOOLS_ONLY} -eq 1 ]]; then
  run_step helm build_helm
  run_step promtool build_promtool
  CURRENT_STEP="verify"
  "${BIN}/promtool" --version >/dev/null 2>&1 || die "promtool --version failed"
  "${BIN}/helm" version --short >/dev/null 2>&1 || die "helm version failed"
  log "tools done in $(( $(date +%s) - TOTAL_START )) s (${TIMINGS[*]})"
  echo "${DIR}"
  exit 0
fi

# Cheapest first, so the small tools are ready early; the big Kubernetes build last.
run_step etcd build_etcd
run_step kwok build_kwok
run_step helm build_helm
run_step kube-bench build_kube_bench
run_step promtool build_promtool
run_step kubernetes build_kubernetes
run_step kubectl build_kubectl

CURRENT_STEP="verify"
"${BIN}/kube-apiserver" --version 2>&1 | grep -q "Kubernetes ${K8S_VERSION}\$" \
  || die "kube-apiserver --version does not report ${K8S_VERSION}: $("${BIN}/kube-apiserver" --version 2>&1 || true)"
"${BIN}/promtool" --version >/dev/null 2>&1 || die "promtool --version failed"
"${BIN}/kubectl" version --client 2>&1 | grep -q "Client Version: ${K8S_VERSION}\$" \
  || die "kubectl version --client does not report ${K8S_VERSION}: $("${BIN}/kubectl" version --client 2>&1 || true)"
"${BIN}/etcd" --version >/dev/null 2>&1 || die "etcd --version failed"

TOTAL=$(( $(date +%s) - TOTAL_START ))
CURRENT_STEP="manifest"
{
  echo "name=${NAME}"
  echo "kubernetes=${K8S_VERSION}"
  echo "etcd=${ETCD_VERSION}"
  echo "kwok=${KWOK_VERSION}"
  echo "helm=${HELM_VERSION}"
  echo "kube-bench=${KUBE_BENCH_VERSION}"
  echo "prometheus=${PROMETHEUS_VERSION}"
  echo "go=$("${GO}" env GOVERSION)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "timings=${TIMINGS[*]} total=${TOTAL}s"
} > "${MANIFEST}.tmp"
mv -f "${MANIFEST}.tmp" "${MANIFEST}"
rm -rf "${WORK}"/gobin.* "${WORK}"/wrap.*

log "all steps done in ${TOTAL} s (${TIMINGS[*]})"
echo "${DIR}"
