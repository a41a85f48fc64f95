# The set-up, the loads and the report of scripts/bench --peers (sourced by `run`,
# which has started both servers and set L_BASE, L_PID, P_BASE, P_PID, REDIS_PORT,
# CLIENT_ID, CLIENT_SECRET, REDIRECT, PASSWORD, USERS, OUT, HERE, DURATION, ROUNDS and
# the connection counts).

VERIFIER=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
CHALLENGE=$(python3 -c 'import base64, hashlib, sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$VERIFIER")
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
REDIRECT_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$REDIRECT")
AUTHORIZE="/oauth2/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=$REDIRECT_ENC&scope=openid%20email&code_challenge=$CHALLENGE&code_challenge_method=S256"

base_of() { if [ "$1" = latchkey ]; then echo "$L_BASE"; else echo "$P_BASE"; fi; }
pid_of() { if [ "$1" = latchkey ]; then echo "$L_PID"; else echo "$P_PID"; fi; }
access_token() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["tokens"][0]["access_token"])' "$1"; }

# Per server: signed-in browsers of the code-flow users (consent given once each), an
# access token of the userinfo user, and 8 refresh chains a round of the refresh user.
# On Latchkey the code flows' users are many (PEER_FLOW_USERS; see run): every flow starts
# an app session, and past max_sessions_per_user (50) the session seen least recently
# is ended, which is the browser session that signs the flows in (its "last seen" is
# written at most once a minute), so one browser makes about sixty flows (the set-up's
# flow and 48 fill its user's 50; the next exchange ends the browser session; the codes
# already asked for still finish) and is then sent to sign in; the load moves on to the
# next user's browser (codeflow.lua). The peer keeps
# its session whatever the count, so one user. The refresh chains and the userinfo
# token belong to users of their own, so those flows end none of them.
# Since app sessions are capped per user and app (app_sessions_per_client, 10) and
# never end a browser session, one Latchkey browser makes every flow (each exchange
# past the cap ends that user's oldest app session: the flow is measured at the cap),
# and each round's refresh chains belong to a Latchkey user of their own.
set_up_users() {
  local s base register u emails accounts
  for s in latchkey peer; do
    base=$(base_of $s); register=""; [ $s = latchkey ] && register=--register
    for u in "${USERS[@]}"; do
      local flows=1 scope="openid email" prompt="" email="$u@example.com" accounts=1
      [ "$u" = refresh ] && { flows=$((8 * ROUNDS)); scope="openid email offline_access"; prompt=consent; }
      # Latchkey keeps at most app_sessions_per_client (10) sessions of one app per user:
      # a refresh user of its own for each round's 8 chains (the peer has no such cap).
      [ "$u" = refresh ] && [ $s = latchkey ] && { flows=8; email="refresh{}@example.com"; accounts="$ROUNDS"; }
      [ "$u" = flow ] && [ $s = latchkey ] && { email="flow{}@example.com"; accounts="$FLOW_USERS"; }
      python3 "$HERE/signin.py" "$base" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
        --redirect-uri "$REDIRECT" --email "$email" --accounts "$accounts" --password "$PASSWORD" $register \
        --scope "$scope" --prompt "$prompt" --challenge="$CHALLENGE" --verifier="$VERIFIER" \
        --flows "$flows" >"$OUT/$s-$u.json"
    done
    python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["cookies"]))' \
      "$OUT/$s-flow.json" >"$OUT/$s-browsers.txt"
    for r in $(seq "$ROUNDS"); do
      python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["tokens"]; r = int(sys.argv[2])
print("\n".join(x["refresh_token"] for x in t[8 * (r - 1):8 * r]))' "$OUT/$s-refresh.json" "$r" >"$OUT/$s-chains-$r.txt"
    done
  done
}

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
redis_cpu_s() { redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {t += $2} END {printf "%.3f", t}'; }

wrk_load() { # server load round -> wrk's output
  local s=$1 load=$2 r=$3 base
  base=$(base_of "$s")
  case $load in
    userinfo)
      wrk -t1 -c"$CONNS_USERINFO" -d"$DURATION" --latency \
        -H "Authorization: Bearer $(access_token "$OUT/$s-info.json")" "$base/oauth2/userinfo" ;;
    refresh)
      BENCH_REFRESH_TOKENS="$OUT/$s-chains-$r.txt" BENCH_BASIC="$BASIC" \
        wrk -t1 -c"$CONNS_REFRESH" -d"$DURATION" --latency -s "$HERE/refresh.lua" "$base" ;;
    flow)
      BENCH_AUTHORIZE="$AUTHORIZE" BENCH_COOKIES="$OUT/$s-browsers.txt" \
        BENCH_BASIC="$BASIC" BENCH_REDIRECT="$REDIRECT_ENC" BENCH_VERIFIER="$VERIFIER" \
        BENCH_BROWSER="$OUT/$s-browser.txt" \
        wrk -t1 -c"$CONNS_FLOW" -d"$DURATION" --latency -s "$HERE/codeflow.lua" "$base" ;;
  esac
}

# One run: "server load round units seconds server_cpu redis_cpu wrk_cpu failures p50 p99"
# into $OUT/runs.txt. Units: userinfo answers 2xx, rotated refresh tokens, finished flows.
run_load() { # server load round
  local s=$1 load=$2 r=$3 pid s0 r0 s1 r1 file="$OUT/$1-$2-$3.txt"
  pid=$(pid_of "$s")
  s0=$(cpu_s "$pid"); r0=$(redis_cpu_s)
  { TIMEFORMAT='%3U %3S'; time wrk_load "$s" "$load" "$r" >"$file" 2>&1; } 2>"$file.time"
  s1=$(cpu_s "$pid"); r1=$(redis_cpu_s)
  python3 "$HERE/report.py" run "$s" "$load" "$r" "$file" "$(cat "$file.time")" \
    "$(python3 -c "print($s1 - $s0)")" "$(python3 -c "print($r1 - $r0)")" >>"$OUT/runs.txt"
  tail -1 "$OUT/runs.txt"
}

run_rounds() {
  local r order load s
  : >"$OUT/runs.txt"
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "measuring: $ROUNDS rounds of userinfo, refresh and code flow on both, runs of $DURATION (load average $LOAD_BEFORE)"
  echo "server load round units seconds server_cpu_s redis_cpu_s wrk_cpu_s failures p50 p99 note"
  for r in $(seq "$ROUNDS"); do
    order="latchkey peer"; [ $((r % 2)) -eq 0 ] && order="peer latchkey"
    for load in userinfo refresh flow; do
      for s in $order; do run_load "$s" "$load" "$r"; done
    done
  done
  LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ "$(cat "$OUT/latchkey-browser.txt")" -ge "$FLOW_USERS" ]; then
    echo "the code flow used up all $FLOW_USERS signed-in users on Latchkey: its failures count requests that found no session (PEER_FLOW_USERS sets more)"
  fi
}

report() {
  local l_rss p_rss redis_rss redis_used
  l_rss=$(ps -o rss= -p "$L_PID" | tr -d ' '); p_rss=$(ps -o rss= -p "$P_PID" | tr -d ' ')
  redis_rss=$(redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '$1 == "used_memory_rss" {print $2}')
  redis_used=$(redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')
  python3 "$HERE/report.py" table "$OUT/runs.txt" \
    --rss "$l_rss" "$p_rss" "$redis_rss" "$redis_used" \
    --context "$(date -u +'%Y-%m-%d %H:%M UTC')" "$(nproc)" \
    "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2; exit}')" \
    "$LOAD_BEFORE" "$LOAD_AFTER" "$(node --version)" \
    "$(node -p 'require("./'"$HERE"'/node_modules/oidc-provider/package.json").version')" \
    "$(redis-server --version | awk '{print $3}' | sed 's/v=//')" "$DURATION" "$ROUNDS" \
    "$CONNS_USERINFO" "$CONNS_REFRESH" "$CONNS_FLOW" "$SAME_KEY" | tee "$OUT/latest.md"
}
