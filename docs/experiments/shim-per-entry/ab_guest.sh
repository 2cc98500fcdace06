#!/bin/sh
# Inside the guest (ab_host.sh): ab_guest.sh <rounds> <module>:<bench> ...
rounds=$1; shift
filter='^(Sync/getppid/real_time$|ExLess/shim/getppid/batch:64/)'
r=1
while [ $r -le $rounds ]; do
  for pair in "$@"; do
    m=${pair%%:*} b=${pair#*:}
    rmmod flexsc_shim 2>/dev/null
    insmod /prog/$m.ko || echo "AB insmod $m failed"
    /prog/$b --flexsc_backends=shim "--benchmark_filter=$filter" --benchmark_min_time=0.5 \
      --flexsc_table=/tmp/t.md --benchmark_color=false >/tmp/o.txt 2>&1 || tail -5 /tmp/o.txt
    grep -E "^\| (Sync|ExLess)" /tmp/t.md | sed "s/^/AB $m r$r /"
    rm -f /tmp/t.md
  done
  r=$((r + 1))
done
