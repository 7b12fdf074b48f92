{{/* Parts shared by the issuer's prepare and issuer containers. */}}
{{- define "tsi.issuerEnv" }}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: KUBELET_HOST
  valueFrom:
    fieldRef:
      fieldPath: {{ if eq .Values.issuer.kubelet.address "nodeName" }}spec.nodeName{{ else }}status.hostIP{{ end }}
{{- end }}
{{- define "tsi.issuerSecurity" }}
{{- if .privileged }}
privileged: true
{{- else }}
privileged: false
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
  {{- if .signer }}
  # The signer starts the front end, which becomes frontUser (SETUID, SETGID) and
  # empties its bounding set (SETPCAP) before it reads the network.
  add: ["SETGID", "SETPCAP", "SETUID"]
  {{- end }}
{{- end }}
readOnlyRootFilesystem: true
runAsNonRoot: false
{{- end }}
{{- define "tsi.issuerMounts" }}
- name: config-template
  mountPath: /etc/tsi/issuer.conf.in
  subPath: issuer.conf.in
  readOnly: true
- name: config-template
  mountPath: /etc/tsi/prepare.sh
  subPath: prepare.sh
  readOnly: true
- name: config
  mountPath: /run/tsi-config
- name: node-certs
  mountPath: /etc/tsi/node-certs
  readOnly: true
- name: state
  mountPath: /var/lib/tsi-issuer
- name: socket-dir
  mountPath: /run/tsi
- name: kubelet-credentials
  mountPath: /var/run/secrets/tsi/kubelet
  readOnly: true
{{- if .privileged }}
- name: tpm
  mountPath: {{ .ctx.Values.issuer.tpm.device }}
{{- end }}
{{- with .ctx.Values.issuer.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}
