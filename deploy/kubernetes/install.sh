#!/usr/bin/env bash
# Install (or remove) Hodei's Kubernetes objects, then verify them.
#
# Applies namespace.yaml, rbac.yaml, network-policy.yaml and configmap.yaml in that
# order, creates the pod profiles ConfigMap (pod-templates.yaml) when it does not exist
# (and, with --with-control-plane, the API token Secret and control-plane.yaml).
# Every step is idempotent: a second run changes nothing. Uses kubectl's current
# context unless --context is given; KUBECTL names another kubectl binary.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly SYSTEM_NS=hodei-system
readonly WORKERS_NS=hodei-workers
readonly MANIFESTS=(namespace.yaml rbac.yaml network-policy.yaml configmap.yaml)
readonly CONTROL_PLANE_MANIFEST=control-plane.yaml
# The operator's pod profiles: created when missing, never overwritten.
readonly POD_TEMPLATES_MANIFEST=pod-templates.yaml
readonly POD_TEMPLATES=hodei-pod-templates
readonly TOKEN_SECRET=hodei-api-token
readonly CONTROL_PLANE_USER="system:serviceaccount:${SYSTEM_NS}:hodei-control-plane"
KUBECTL="${KUBECTL:-kubectl}"

with_control_plane=0
dry_run=0
uninstall=0
kubectl_args=()
context_name=""

usage() {
  cat <<EOF
Usage: $(basename "$0") [--with-control-plane] [--dry-run] [--uninstall] [--context NAME]

Install Hodei's Kubernetes objects (namespaces, RBAC, network policies, provider
ConfigMap) into the cluster of kubectl's current context, then verify them.

  --with-control-plane  also run the control plane in the cluster: create the Secret
                        ${TOKEN_SECRET} (only when missing, never overwritten) and
                        apply ${CONTROL_PLANE_MANIFEST}
  --dry-run             show what would be applied or deleted; change nothing
  --uninstall           delete everything this script installs (both namespaces)
  --context NAME        use this kubeconfig context instead of the current one
  -h, --help            this help

Environment: KUBECTL (default: kubectl), KUBECONFIG (as for kubectl).
EOF
}

log() { printf '%s\n' "$*"; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

k() { "$KUBECTL" ${kubectl_args[@]+"${kubectl_args[@]}"} "$@"; }

parse_args() {
  while (($# > 0)); do
    case "$1" in
      --with-control-plane) with_control_plane=1 ;;
      --dry-run) dry_run=1 ;;
      --uninstall) uninstall=1 ;;
      --context)
        (($# > 1)) || die "--context needs a context name"
        context_name="$2"
        shift
        ;;
      --context=*) context_name="${1#--context=}" ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
  done
  if [[ -n "$context_name" ]]; then
    kubectl_args+=(--context "$context_name")
  fi
}

check_kubectl() {
  command -v "$KUBECTL" >/dev/null 2>&1 ||
    die "kubectl not found (looked for '$KUBECTL' on PATH); install kubectl 1.28+ or set KUBECTL=/path/to/kubectl"
  local out context="$context_name"
  [[ -n "$context" ]] || context="$(k config current-context 2>/dev/null || true)"
  if ! out="$(k get --raw /version --request-timeout=15s 2>&1)"; then
    die "cannot reach the Kubernetes API with kubectl (context: ${context:-none}): ${out}
Check KUBECONFIG / --context and that the cluster is running."
  fi
  log "Cluster reachable (context: ${context:-none})."
}

can_i() {
  # Prints yes, no, or kubectl's error text (one line) for: kubectl auth can-i ARGS...
  local out
  out="$(k auth can-i "$@" 2>&1 || true)"
  if grep -qx yes <<<"$out"; then
    echo yes
  elif grep -qx no <<<"$out"; then
    echo no
  else
    echo "error: $(tr '\n' ' ' <<<"$out")"
  fi
}

check_admin() {
  local answer question
  for question in "create namespaces" "create roles -n ${WORKERS_NS}" \
    "create rolebindings -n ${WORKERS_NS}"; do
    # shellcheck disable=SC2086 # the question is split into kubectl's arguments on purpose
    answer="$(can_i $question)"
    case "$answer" in
      yes) ;;
      no) die "the current user may not ${question}; run this script as a cluster admin" ;;
      *) die "cannot check permissions (kubectl auth can-i ${question}): ${answer}" ;;
    esac
  done
}

apply_file() {
  local file="$1"
  if ((dry_run)); then
    k apply --dry-run=client -f "${HERE}/${file}"
  else
    k apply -f "${HERE}/${file}"
  fi
}

new_token() {
  # 32 random bytes as hex: no characters a shell or a header could mangle.
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

ensure_token_secret() {
  local existing tmp
  existing="$(k get secret "$TOKEN_SECRET" -n "$SYSTEM_NS" --ignore-not-found -o name)" ||
    die "cannot read secret ${TOKEN_SECRET} in ${SYSTEM_NS}"
  if [[ -n "$existing" ]]; then
    log "secret/${TOKEN_SECRET} exists (kept as it is)"
    return
  fi
  if ((dry_run)); then
    log "secret/${TOKEN_SECRET} created (dry run)"
    return
  fi
  # The token goes through a private file, not the command line (visible in ps).
  tmp="$(mktemp -d)"
  chmod 700 "$tmp"
  new_token >"${tmp}/token"
  if ! k create secret generic "$TOKEN_SECRET" -n "$SYSTEM_NS" --from-file=token="${tmp}/token"; then
    rm -rf "$tmp"
    die "could not create secret ${TOKEN_SECRET} in ${SYSTEM_NS}"
  fi
  rm -rf "$tmp"
}

ensure_pod_templates() {
  local existing
  existing="$(k get configmap "$POD_TEMPLATES" -n "$SYSTEM_NS" --ignore-not-found -o name)" ||
    die "cannot read configmap ${POD_TEMPLATES} in ${SYSTEM_NS}"
  if [[ -n "$existing" ]]; then
    log "configmap/${POD_TEMPLATES} exists (kept as it is: your pod profiles)"
  elif ((dry_run)); then
    log "configmap/${POD_TEMPLATES} created (dry run)"
  else
    k create -f "${HERE}/${POD_TEMPLATES_MANIFEST}"
  fi
}

install() {
  local file
  for file in "${MANIFESTS[@]}"; do
    apply_file "$file"
  done
  ensure_pod_templates
  if ((with_control_plane)); then
    ensure_token_secret
    apply_file "$CONTROL_PLANE_MANIFEST"
  fi
}

uninstall_all() {
  local flags=(--ignore-not-found)
  ((dry_run)) && flags+=(--dry-run=client)
  # Reverse order; deleting the namespaces removes every namespaced object in them.
  k delete "${flags[@]}" -f "${HERE}/${CONTROL_PLANE_MANIFEST}"
  k delete "${flags[@]}" secret "$TOKEN_SECRET" -n "$SYSTEM_NS"
  k delete "${flags[@]}" configmap "$POD_TEMPLATES" -n "$SYSTEM_NS"
  local i
  for ((i = ${#MANIFESTS[@]} - 1; i >= 0; i--)); do
    k delete "${flags[@]}" -f "${HERE}/${MANIFESTS[i]}"
  done
}

failures=0

expect_objects() {
  # expect_objects NAMESPACE|- KIND/NAME...: each object must exist (one kubectl call).
  local ns="$1" found object
  shift
  local scope=()
  [[ "$ns" != - ]] && scope=(-n "$ns")
  found="$(k get ${scope[@]+"${scope[@]}"} "$@" -o name --ignore-not-found 2>&1 || true)"
  for object in "$@"; do
    if grep -qxF "$object" <<<"$found"; then
      log "  ok    ${object}${scope[1]:+ in ${scope[1]}}"
    else
      log "  FAIL  ${object}${scope[1]:+ in ${scope[1]}}: not found"
      failures=$((failures + 1))
    fi
  done
}

expect_can_i() {
  # expect_can_i yes|no VERB RESOURCE NAMESPACE [SUBRESOURCE]: the control plane's answer.
  local want="$1" verb="$2" resource="$3" ns="$4" sub="${5:-}" got what
  local args=("$verb" "$resource" -n "$ns" --as="$CONTROL_PLANE_USER")
  what="${verb} ${resource}${sub:+ --subresource=${sub}} -n ${ns}"
  [[ -n "$sub" ]] && args+=(--subresource="$sub")
  got="$(can_i "${args[@]}")"
  if [[ "$got" == "$want" ]]; then
    log "  ok    can-i ${what}: ${got}"
  else
    log "  FAIL  can-i ${what}: ${got} (expected ${want})"
    failures=$((failures + 1))
  fi
}

verify() {
  log "Verifying:"
  expect_objects - "namespace/${SYSTEM_NS}" "namespace/${WORKERS_NS}"
  expect_objects "$WORKERS_NS" serviceaccount/hodei-worker \
    role.rbac.authorization.k8s.io/hodei-provider \
    rolebinding.rbac.authorization.k8s.io/hodei-provider \
    networkpolicy.networking.k8s.io/hodei-default-deny \
    networkpolicy.networking.k8s.io/hodei-worker-egress
  local system_objects=(serviceaccount/hodei-control-plane configmap/hodei-provider-config
    "configmap/${POD_TEMPLATES}")
  if ((with_control_plane)); then
    system_objects+=("secret/${TOKEN_SECRET}" deployment.apps/hodei-control-plane
      service/hodei-control-plane)
  fi
  expect_objects "$SYSTEM_NS" "${system_objects[@]}"
  local verb
  for verb in create get list watch delete; do
    expect_can_i yes "$verb" pods "$WORKERS_NS"
  done
  expect_can_i yes get pods "$WORKERS_NS" log
  expect_can_i yes get pods "$WORKERS_NS" status
  expect_can_i no create pods "$WORKERS_NS" exec
  expect_can_i no patch pods "$WORKERS_NS"
  expect_can_i no get secrets "$WORKERS_NS"
  expect_can_i no create pods default
  ((failures == 0)) || die "${failures} verification check(s) failed; see the lines marked FAIL"
  log "All checks passed."
}

verify_uninstalled() {
  local ns left=0
  for ns in "$SYSTEM_NS" "$WORKERS_NS"; do
    if [[ -n "$(k get namespace "$ns" --ignore-not-found -o name)" ]]; then
      log "  namespace ${ns} still exists (it may still be terminating)"
      left=1
    fi
  done
  ((left == 0)) || die "uninstall incomplete"
  log "Hodei's objects are removed."
}

main() {
  parse_args "$@"
  check_kubectl
  if ((uninstall)); then
    uninstall_all
    ((dry_run)) || verify_uninstalled
    return
  fi
  check_admin
  install
  if ((dry_run)); then
    log "Dry run: nothing was changed."
  else
    verify
  fi
}

main "$@"
