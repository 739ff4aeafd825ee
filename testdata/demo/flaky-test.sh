#!/bin/sh
# Fails on the first attempt of a run, passes on the next: shows `retries` at work.
mkdir -p .demo-state
f=".demo-state/$NEXUS_RUN_ID"
echo attempt >> "$f"
n=$(wc -l < "$f")
if [ "$n" -lt 2 ]; then
  echo "attempt $n: connection reset by peer" >&2
  exit 1
fi
echo "attempt $n: 42 passed"
