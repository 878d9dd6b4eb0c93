#!/bin/bash
# Checks that every code block a page marks with <!-- verbatim: <path> --> is exactly the
# file at <path> (workspace-relative), so a guide that quotes real code cannot drift from it.
# Usage: check_verbatim.sh <page.md>; run from the workspace root (Bazel's runfiles dir).
set -u
page="$1"
failures=0
checked=0
while IFS= read -r path; do
  checked=$((checked + 1))
  # The fenced block right after the marker, without its fence lines.
  block=$(awk -v marker="<!-- verbatim: $path -->" '
    $0 == marker { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```$/ { exit }
    found == 2 { print }
  ' "$page")
  if [[ ! -f "$path" ]]; then
    echo "FAIL: $page quotes $path, which does not exist"
    failures=$((failures + 1))
  elif ! diff -u "$path" <(printf '%s\n' "$block") >/dev/null; then
    echo "FAIL: $page's copy of $path differs from the file (- file, + page):"
    diff -u "$path" <(printf '%s\n' "$block")
    failures=$((failures + 1))
  else
    echo "ok: $path"
  fi
done < <(sed -n 's/^<!-- verbatim: \(.*\) -->$/\1/p' "$page")
if [[ $checked -eq 0 ]]; then
  echo "FAIL: $page has no <!-- verbatim: ... --> blocks"
  exit 1
fi
exit $((failures > 0))
