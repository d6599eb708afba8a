#!/usr/bin/env bash
# Prints the PrometheusRule manifest for prometheus-operator built from
# deploy/prometheus/alerts.yaml, the single source of the alert rules:
#   bash deploy/prometheus/generate-prometheusrule.sh > deploy/kubernetes/base/prometheusrule.yaml
# CI (.ci/ecosystem) regenerates it and fails when the committed file differs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cat <<'HEADER'
# GENERATED from deploy/prometheus/alerts.yaml by
# deploy/prometheus/generate-prometheusrule.sh: edit alerts.yaml, then
# regenerate this file. The alert rules for prometheus-operator.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: upstream-exporter
  labels:
    app.kubernetes.io/name: upstream-exporter
    app.kubernetes.io/component: alerting-rules
spec:
HEADER
# Everything from `groups:` on, indented under spec:.
awk 'started || /^groups:/ { started = 1; if ($0 == "") print ""; else print "  " $0 }' alerts.yaml
