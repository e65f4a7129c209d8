#!/usr/bin/env bash
# The decision service from a sending pipeline's side, with curl and jq.
#
# Start the service first (`headliner serve`), then run this script. Once an
# API key exists (`headliner keys create NAME`) every /v1 call needs it:
#   HEADLINER_URL=http://127.0.0.1:8000 HEADLINER_KEY=<key> examples/walkthrough.sh
set -euo pipefail

URL="${HEADLINER_URL:-http://127.0.0.1:8000}"
AUTH=()
if [ -n "${HEADLINER_KEY:-}" ]; then
    AUTH=(-H "Authorization: Bearer $HEADLINER_KEY")
fi

# Every call fails the script on a 4xx or 5xx, printing the service's error body.
post() {  # post PATH [JSON] [curl options...]
    local path=$1 body=${2:-}
    shift $(( $# < 2 ? $# : 2 ))
    curl -sS --fail-with-body -XPOST "$URL$path" "${AUTH[@]}" \
        -H 'content-type: application/json' ${body:+-d "$body"} "$@"
}
get() { curl -sS --fail-with-body "$URL$1" "${AUTH[@]}"; }

# 1. Create an experiment: three headlines, a 72-hour attribution window.
ID=$(post /v1/experiments '{"name": "spring sale", "headlines": ["Ending Tonight", "Your Spring Offer", "25% Off Everything"],
     "attribution_window_seconds": 259200, "burn_in_per_arm": 200, "floor": 0.01}' | jq -r .id)
echo "experiment $ID"

# 2. Per send: which headline? A retry with the same Idempotency-Key returns the same decision.
DECISION=$(post "/v1/experiments/$ID/decisions" '{"recipient_id": "r-123"}' -H 'Idempotency-Key: send-123')
DECISION_ID=$(jq -r .decision_id <<<"$DECISION")
echo "send r-123 gets $(jq -r .headline <<<"$DECISION") (propensity $(jq -r .propensity <<<"$DECISION"))"

# 3. Hours later the tracking pixel fires: report the open (a repeat counts once).
post "/v1/experiments/$ID/decisions/$DECISION_ID/open" | jq -c .

# 4. Or send in waves: how to split the next 50,000 sends...
WAVE=$(post "/v1/experiments/$ID/allocations" '{"sends": 50000}')
WAVE_ID=$(jq -r .wave_id <<<"$WAVE")
jq -c "{reason, allocation: [.allocation[] | {headline, sends}]}" <<<"$WAVE"

# ...then, whenever you look, each headline's running total of opens for that wave.
post "/v1/experiments/$ID/allocations/$WAVE_ID/opens" \
    '{"opens": [{"headline": "Ending Tonight", "opens": 812}, {"arm": 1, "opens": 1190}]}' | jq -c "[.allocation[] | {headline, opens}]"

# 5. The report: per headline, what its evidence is worth so far (effective sends: opens
#    come in over hours, so a wave sent a minute ago is worth little yet), P(best), and why
#    the next sends will be split as they will.
get "/v1/experiments/$ID/report" |
    jq '{status, allocation_reason, arms: [.arms[] | {headline, sends, opens, effective_sends, p_best}]}'
