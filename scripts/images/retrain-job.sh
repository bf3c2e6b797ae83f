#!/usr/bin/env bash
# Start one training run from the CronJob (as `kubectl create job --from` does),
# wait for it, print its log, and exit with the trainer's own exit code
# (0 promoted or nothing to do, 1 retryable, 2 bad input/config, 3 gate refused),
# so a pipeline can branch on it. Used by .github/workflows/retrain.yml.
# Usage: scripts/images/retrain-job.sh JOB [NAMESPACE] [TIMEOUT_SECONDS]
set -euo pipefail
job="${1:?job name}" ns="${2:-spamops}" timeout="${3:-3600}"
kubectl="${KUBECTL:-kubectl}"
"$kubectl" -n "$ns" create job "$job" --from=cronjob/spamops-retrain
deadline=$((SECONDS + timeout))
while :; do
  state="$("$kubectl" -n "$ns" get job "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"
  case " $state " in *" Complete "* | *" Failed "*) break ;; esac
  ((SECONDS < deadline)) || { echo "retrain-job: $job did not finish in ${timeout}s" >&2; exit 1; }
  sleep 10
done
"$kubectl" -n "$ns" logs "job/$job" --all-containers || true
code="$("$kubectl" -n "$ns" get pods -l "job-name=$job" --sort-by=.metadata.creationTimestamp \
  -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{"\n"}{end}' | tail -n1)"
echo "retrain-job: $job finished ($state), trainer exit code ${code:-unknown}" >&2
exit "${code:-1}"
