# The image a `kubectl rotate schedule` CronJob runs: the plugin's static Linux binary (the
# release command's musl build) and nothing else: no shell, no libc, no CA bundle (in a pod
# the plugin trusts the mounted service account CA; a database's CA comes from its Secret).
# Built by .github/workflows/release.yml from the release archives, one binary per
# platform at image/linux_<arch>/kubectl-rotate, and pushed as
# ghcr.io/kubectl-rotate/kubectl-rotate:<tag> (the plugin's default --image).
FROM scratch
ARG TARGETARCH
COPY --chmod=0555 image/linux_${TARGETARCH}/kubectl-rotate /kubectl-rotate
# The CronJob's runAsUser/runAsGroup (cmd/schedule/spec.rs): not root.
USER 65532:65532
ENTRYPOINT ["/kubectl-rotate"]
