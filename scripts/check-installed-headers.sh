#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed headers as a user meets them: each compiles alone with nothing but the prefix's
# include directory, and what it pulls in is bloccs/ and the C++ and C libraries, never
# Boost, toml++ or the library's internals.   Usage: check-installed-headers.sh PREFIX
set -euo pipefail
prefix=$(cd "$1" && pwd)
inc="$prefix/include"
fail=0
for header in "$inc"/bloccs/*.hpp; do
  name=bloccs/$(basename "$header")
  if ! echo "#include <$name>" | g++ -std=c++20 -Wall -Wextra -I"$inc" -x c++ -fsyntax-only -; then
    echo "FAIL: $name does not compile alone"
    fail=1
    continue
  fi
  deps=$(echo "#include <$name>" | g++ -std=c++20 -I"$inc" -x c++ -M - | tr ' \\' '\n\n' | grep '^/')
  while read -r dep; do
    # Allowed: bloccs's own, the C++ library (and its per-arch config), the C library's.
    if [[ $dep == "$inc"/bloccs/* ]] ||
       [[ $dep =~ ^/usr/(include/c\+\+|lib/gcc|include/x86_64-linux-gnu)/ ]] ||
       [[ $dep =~ ^/usr/include/(linux|asm-generic|sys|bits)/[^/]+$ ]] ||
       [[ $dep =~ ^/usr/include/[^/]+\.h$ ]]; then
      continue
    fi
    echo "FAIL: $name pulls in $dep"
    fail=1
  done <<<"$deps"
done
# Nothing of the tree's layers is installed.
for layer in shm lockfree registry port internal; do
  if [ -e "$inc/bloccs/$layer" ] || [ -e "$inc/$layer" ]; then echo "FAIL: $layer/ is installed"; fail=1; fi
done
[ $fail -eq 0 ] && echo "ok: $(ls "$inc"/bloccs/*.hpp | wc -l) installed headers, each alone, none reaching outside bloccs/ and the standard libraries"
exit $fail
