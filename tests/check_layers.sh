#!/usr/bin/env bash
# Includes run one way in lib/: the API and the runtime above the backends,
# the backends above the pieces they share (lib/base); the drop-in above
# lib/mn (pthread synchronization for M:N threads), lib/mn above the fibers
# and lib/base; nothing below including anything above it; a backend
# includes no other backend, only the syscall threads they share.  Prints
# each include that breaks this.
#   check_layers.sh <source dir>
set -uo pipefail
cd "$1/lib" || exit 2
bad=0
# forbid <files> <pattern of includes they may not have> <why>
forbid() {
  local pattern=$1 why=$2 hits
  shift 2
  hits=$(grep -nE "^#include \"($pattern)" "$@" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "$hits" | sed "s|\$|   <- $why|"
    bad=1
  fi
}
above_base='backends/|runtime\.h|api\.h|fiber/|mn/|preload/'
above_backends='runtime\.h|api\.h|fiber/|mn/|preload/'
forbid "$above_base" "lib/base includes a layer above it" base/*.h base/*.cpp
forbid "$above_backends" "a backend includes a layer above it" backends/*.h backends/*.cpp backends/*/*.h backends/*/*.cpp
forbid 'backends/(thread|uring|shim)/' "the syscall threads include a backend" backends/syscall_threads/*
forbid 'backends/(uring|shim)/' "the thread backend includes another backend" backends/thread/*
forbid 'backends/(thread|shim)/' "the io_uring backend includes another backend" backends/uring/*
forbid 'backends/(thread|uring|syscall_threads)/' "the shim backend includes another backend" backends/shim/*
forbid 'fiber/|mn/|preload/' "the runtime or the API includes a layer above it" runtime.h runtime.cpp api.h api.cpp
forbid 'mn/|preload/' "the fibers include a layer above them" fiber/*
forbid 'backends/|runtime\.h|api\.h|preload/' "lib/mn includes what is not below it (fiber/, base/)" mn/*
if [ "$bad" -ne 0 ]; then
  echo "layers: includes run the wrong way (see CONTRIBUTING.md, the layout)"
  exit 1
fi
echo "layers: every include in lib/ runs downward"
