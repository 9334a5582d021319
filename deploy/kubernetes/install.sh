#!/usr/bin/env bash
# Install (or remove) Hodei's Kubernetes objects, then verify them.
#
# Applies namespace.yaml, rbac.yaml, network-policy.yaml and configmap.yaml in that
# order, creates the pod profiles ConfigMap (pod-templates.yaml) when it does not exist
# (and, with --with-control-plane, the API token Secret, a CA and server certificate
# for TLS with the CA's ConfigMap for worker pods, and control-plane.yaml).
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
# The control plane's TLS material (keys tls.crt, tls.key, ca.crt, as cert-manager writes
# them) and the CA worker pods verify it with: created when missing, never overwritten.
readonly TLS_SECRET=hodei-tls
readonly CA_CONFIGMAP=hodei-ca
readonly SERVICE=hodei-control-plane
readonly CERT_DAYS=825
readonly CA_DAYS=3650
readonly POLICY_MANIFEST=network-policy.yaml
readonly DEFAULT_MONITORING_NS=monitoring
readonly CONTROL_PLANE_USER="system:serviceaccount:${SYSTEM_NS}:hodei-control-plane"
KUBECTL="${KUBECTL:-kubectl}"

with_control_plane=0
monitoring_ns="$DEFAULT_MONITORING_NS"
dry_run=0
uninstall=0
kubectl_args=()
context_name=""

usage() {
  cat <<EOF
Usage: $(basename "$0") [--with-control-plane] [--monitoring-namespace NAME] [--dry-run]
                  [--uninstall] [--context NAME]

Install Hodei's Kubernetes objects (namespaces, RBAC, network policies, provider
ConfigMap) into the cluster of kubectl's current context, then verify them.

  --with-control-plane  also run the control plane in the cluster: create the Secrets
                        ${TOKEN_SECRET} and ${TLS_SECRET} (a new CA and a certificate
                        for the Service's DNS names, made with openssl) and the
                        ConfigMap ${CA_CONFIGMAP} in ${WORKERS_NS} (only when missing,
                        never overwritten), then apply ${CONTROL_PLANE_MANIFEST}
  --monitoring-namespace NAME
                        the namespace whose pods may read /metrics on port 9090
                        (default: ${DEFAULT_MONITORING_NS})
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
      --monitoring-namespace)
        (($# > 1)) || die "--monitoring-namespace needs a namespace name"
        monitoring_ns="$2"
        shift
        ;;
      --monitoring-namespace=*) monitoring_ns="${1#--monitoring-namespace=}" ;;
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
  [[ "$monitoring_ns" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    die "--monitoring-namespace '${monitoring_ns}' is not a namespace name (a DNS-1123 label, e.g. monitoring)"
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

apply_policies() {
  # network-policy.yaml, with the monitoring namespace allowed to reach port 9090.
  local flags=()
  ((dry_run)) && flags+=(--dry-run=client)
  sed "s/kubernetes.io\/metadata.name: ${DEFAULT_MONITORING_NS}\$/kubernetes.io\/metadata.name: ${monitoring_ns}/" \
    "${HERE}/${POLICY_MANIFEST}" | k apply ${flags[@]+"${flags[@]}"} -f -
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

exists() {
  # exists KIND/NAME NAMESPACE: whether the object is there (dies when it cannot tell).
  local found
  found="$(k get "$1" -n "$2" --ignore-not-found -o name)" || die "cannot read $1 in $2"
  [[ -n "$found" ]]
}

make_certificates() {
  # make_certificates DIR: a CA and a server certificate for the Service's DNS names.
  local dir="$1" svc="${SERVICE}.${SYSTEM_NS}"
  command -v openssl >/dev/null 2>&1 ||
    die "openssl not found; install it, or create the Secret ${TLS_SECRET} yourself (README: cert-manager)"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "${dir}/ca.key" -out "${dir}/ca.crt" -days "$CA_DAYS" -subj "/CN=Hodei CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "${dir}/tls.key" -out "${dir}/tls.csr" -subj "/CN=${svc}.svc"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=DNS:${SERVICE},DNS:${svc},DNS:${svc}.svc,DNS:${svc}.svc.cluster.local" \
      >"${dir}/server.ext"
    openssl x509 -req -in "${dir}/tls.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" \
      -CAcreateserial -days "$CERT_DAYS" -extfile "${dir}/server.ext" -out "${dir}/tls.crt"
  ) >/dev/null 2>&1 || die "openssl could not make the certificates"
}

ensure_tls() {
  # The Secret first (the control plane mounts it), then the CA's ConfigMap for workers,
  # taken from the Secret so an existing (e.g. cert-manager's) CA is the one shared.
  local tmp
  tmp="$(mktemp -d)"
  chmod 700 "$tmp"
  if exists "secret/${TLS_SECRET}" "$SYSTEM_NS"; then
    log "secret/${TLS_SECRET} exists (kept as it is)"
  elif ((dry_run)); then
    log "secret/${TLS_SECRET} created (dry run)"
  else
    make_certificates "$tmp"
    k create secret generic "$TLS_SECRET" -n "$SYSTEM_NS" --type=kubernetes.io/tls \
      --from-file=tls.crt="${tmp}/tls.crt" --from-file=tls.key="${tmp}/tls.key" \
      --from-file=ca.crt="${tmp}/ca.crt" || { rm -rf "$tmp"; die "could not create secret ${TLS_SECRET}"; }
  fi
  if exists "configmap/${CA_CONFIGMAP}" "$WORKERS_NS"; then
    log "configmap/${CA_CONFIGMAP} exists in ${WORKERS_NS} (kept as it is)"
  elif ((dry_run)); then
    log "configmap/${CA_CONFIGMAP} created in ${WORKERS_NS} (dry run)"
  else
    k get secret "$TLS_SECRET" -n "$SYSTEM_NS" -o 'jsonpath={.data.ca\.crt}' |
      base64 -d >"${tmp}/ca-from-secret.crt" ||
      { rm -rf "$tmp"; die "cannot read ca.crt of secret ${TLS_SECRET}"; }
    [[ -s "${tmp}/ca-from-secret.crt" ]] ||
      { rm -rf "$tmp"; die "secret ${TLS_SECRET} has no ca.crt: add the CA that signs its tls.crt"; }
    k create configmap "$CA_CONFIGMAP" -n "$WORKERS_NS" \
      --from-file=ca.crt="${tmp}/ca-from-secret.crt" ||
      { rm -rf "$tmp"; die "could not create configmap ${CA_CONFIGMAP} in ${WORKERS_NS}"; }
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
    if [[ "$file" == "$POLICY_MANIFEST" ]]; then
      apply_policies
    else
      apply_file "$file"
    fi
  done
  ensure_pod_templates
  if ((with_control_plane)); then
    ensure_token_secret
    ensure_tls
    apply_file "$CONTROL_PLANE_MANIFEST"
  fi
}

uninstall_all() {
  local flags=(--ignore-not-found)
  ((dry_run)) && flags+=(--dry-run=client)
  # Reverse order; deleting the namespaces removes every namespaced object in them.
  k delete "${flags[@]}" -f "${HERE}/${CONTROL_PLANE_MANIFEST}"
  k delete "${flags[@]}" secret "$TOKEN_SECRET" "$TLS_SECRET" -n "$SYSTEM_NS"
  k delete "${flags[@]}" configmap "$CA_CONFIGMAP" -n "$WORKERS_NS"
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
    "configmap/${POD_TEMPLATES}" networkpolicy.networking.k8s.io/hodei-system-default-deny
    networkpolicy.networking.k8s.io/hodei-control-plane-ingress)
  if ((with_control_plane)); then
    system_objects+=("secret/${TOKEN_SECRET}" "secret/${TLS_SECRET}"
      deployment.apps/hodei-control-plane service/hodei-control-plane)
    expect_objects "$WORKERS_NS" "configmap/${CA_CONFIGMAP}"
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
