#!/usr/bin/env bash
# //:pipeline asked for @weft//channel, @weft//sync:semaphore and @weft//sched:scheduler.
# It must not pull in weft's test or benchmark dependencies, nor weft targets it did not ask
# for (other sync families, asyncmap, plugins, tests, bench).
set -euo pipefail
deps=pipeline_deps
bad=$(grep -E '^@(weft|system)//' "$deps" |
      grep -E 'gtest|gmock|benchmark|@weft//(tests|bench|plugins|asyncmap)|@weft//sync:(lock|condition|event|sync_scope|timedwait|fd_wait|sync)$' || true)
if [ -n "$bad" ]; then
  echo "//:pipeline pulls in targets it did not ask for:"
  echo "$bad"
  exit 1
fi
echo "weft targets linked into //:pipeline:"
grep '^@weft//' "$deps" | grep -v -E '\.(h|cc|S)$'
