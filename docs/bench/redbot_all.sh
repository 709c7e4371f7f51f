#!/bin/bash
# REDbot against every case of redbot_cases.txt (name|method|url|headers joined by ;;|body),
# one text report per case in $1 (default ./redbot-out). Expects the demo on 127.0.0.1:8431
# and examples/hello on 127.0.0.1:8432, and REDbot in /work/venv-redbot (see redbot-review.md).
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-redbot-out}
py=${REDBOT_PY:-/work/venv-redbot/bin/python}
mkdir -p "$out"
while IFS='|' read -r name method url hdrs body; do
  [ -z "$name" ] && continue
  args=(-X "$method")
  if [ -n "$hdrs" ]; then
    IFS=$'\n' read -r -d '' -a hs < <(printf '%s' "$hdrs" | sed 's/;;/\n/g'; printf '\0')
    for h in "${hs[@]}"; do args+=(-H "$h"); done
  fi
  [ -n "$body" ] && args+=(-d "$body")
  timeout 60 "$py" "$here/redbot_run.py" -L "${args[@]}" "$url" > "$out/$name.txt" 2>&1
  echo "$name rc=$?"
done < "$here/redbot_cases.txt"
