# nginx under flexsc-run on loopback, for the drop-in wrapper's server
# test (tests/preload/server.sh) and its benchmark (bench/server-bench.sh).
# Source it; it sets $tmp (a work directory, removed on exit unless KEEP is
# set) and $www (the static tree), and provides
#   start_server <flexsc-run, or "" for a native run> <route> <stats file>
#                sets $port and $server_pid; 1 if nginx did not come up
#   stop_server  SIGQUIT, then up to 10 s for the master to exit; 1 if it lingered
nginx=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-server.XXXXXX") || exit 1
chmod 755 "$tmp"
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# The static tree: small, page-sized, large, and a directory.
www=$tmp/www
mkdir -p "$www/dir" "$tmp/logs"
echo "hello from nginx under flexsc" >"$www/index.html"
head -c 4096 /dev/urandom >"$www/page.bin"
head -c 200000 /dev/urandom >"$www/dir/large.bin"
seq 1 5000 >"$www/dir/numbers.txt"
chmod -R a+rX "$www"

write_config() {
  cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root root;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  server {
    listen 127.0.0.1:$1;
    root $www;
  }
}
EOF
}

wait_listening() {
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

start_server() {
  local launcher=$1 route=$2 stats=$3 attempt candidate
  for attempt in 1 2 3 4 5; do
    # Below the kernel's ephemeral range (32768 up): a client socket of
    # this or another test (ab, wrk, curl) can hold a port there, and
    # nginx then cannot bind it.  A port someone listens on is skipped.
    candidate=$((20000 + (RANDOM % 12000)))
    if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then continue; fi
    write_config "$candidate"
    if [ -n "$launcher" ]; then
      FLEXSC_ROUTE=$route "$launcher" --stats-file "$stats" -- "$nginx" -p "$tmp" -c "$tmp/nginx.conf" \
        >"$tmp/logs/stdout" 2>&1 &
    else
      "$nginx" -p "$tmp" -c "$tmp/nginx.conf" >"$tmp/logs/stdout" 2>&1 &
    fi
    server_pid=$!
    if wait_listening "$candidate"; then
      port=$candidate
      return 0
    fi
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=""
  done
  return 1
}

stop_server() {
  local i
  kill -QUIT "$server_pid"
  for i in $(seq 1 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then return 1; fi
  wait "$server_pid"
  server_pid=""
  return 0
}
