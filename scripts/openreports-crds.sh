#!/usr/bin/env bash
# The official report CRDs, from their Go modules through the Go module proxy (never kept in
# this repository), cached in a folder keyed by the module versions:
#   openreports/   github.com/openreports/reports-api  config/crd/                (Report, ClusterReport)
#   wgpolicyk8s/   github.com/kyverno/kyverno          config/crds/policyreport/  (PolicyReport, ClusterPolicyReport)
#
# Usage:
#   scripts/openreports-crds.sh               fetch what is missing; print the cache dir (last line)
#   scripts/openreports-crds.sh --chart       also copy the OpenReports CRDs into the Helm chart's
#                                             files/openreports-crds/ (for openReports.installCRDs)
set -euo pipefail

OPENREPORTS_MODULE="github.com/openreports/reports-api"
OPENREPORTS_VERSION="v0.2.1"
KYVERNO_MODULE="github.com/kyverno/kyverno"
KYVERNO_VERSION="v1.19.1"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/compliance-scan/report-crds"
DIR="${CACHE_ROOT}/reports-api-${OPENREPORTS_VERSION}-kyverno-${KYVERNO_VERSION}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '[report-crds] %s\n' "$*" >&2; }
die() { printf '[report-crds] ERROR: %s\n' "$*" >&2; exit 1; }

GO="$(command -v go || true)"
if [[ -z "${GO}" && -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; fi
[[ -n "${GO}" ]] || die "no go toolchain found (looked for 'go' on PATH and /usr/local/go/bin/go)"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# The extracted module folder in the Go module cache (`go mod download -json` prints "Dir").
module_dir() {
  local out dir
  out="$(cd / && "${GO}" mod download -json "$1")" || die "go mod download $1 failed"
  dir="$(printf '%s\n' "${out}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)"
  [[ -n "${dir}" && -d "${dir}" ]] || die "go mod download $1 gave no module dir"
  echo "${dir}"
}

if [[ ! -f "${DIR}/complete" ]]; then
  log "fetching ${OPENREPORTS_MODULE}@${OPENREPORTS_VERSION} and ${KYVERNO_MODULE}@${KYVERNO_VERSION}"
  openreports="$(module_dir "${OPENREPORTS_MODULE}@${OPENREPORTS_VERSION}")"
  kyverno="$(module_dir "${KYVERNO_MODULE}@${KYVERNO_VERSION}")"
  mkdir -p "${CACHE_ROOT}"
  tmp="$(mktemp -d "${CACHE_ROOT}/.tmp.XXXXXX")"
  mkdir -p "${tmp}/openreports" "${tmp}/wgpolicyk8s"
  cp "${openreports}"/config/crd/openreports.io_*.yaml "${tmp}/openreports/"
  cp "${kyverno}"/config/crds/policyreport/wgpolicyk8s.io_*.yaml "${tmp}/wgpolicyk8s/"
  # Files from the module cache are read-only.
  chmod -R u+w "${tmp}"
  [[ "$(ls "${tmp}/openreports" | wc -l)" -eq 2 && "$(ls "${tmp}/wgpolicyk8s" | wc -l)" -eq 2 ]] \
    || die "expected two CRDs from each module, got: $(ls "${tmp}"/*)"
  touch "${tmp}/complete"
  rm -rf "${DIR}"
  mv "${tmp}" "${DIR}"
fi

if [[ "${1:-}" == "--chart" ]]; then
  chart="${REPO}/deploy/helm/compliance-scan/files/openreports-crds"
  mkdir -p "${chart}"
  cp "${DIR}"/openreports/*.yaml "${chart}/"
  log "copied the OpenReports CRDs into ${chart}"
fi
echo "${DIR}"
