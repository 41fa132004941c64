#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASAN+UBSAN) and runs each for SECONDS, then runs
# the multi-threaded trie_stress for SECONDS under ASAN+UBSAN and under TSAN.
# Needs: cmake, clang (Debian bookworm: apt-get install -y cmake clang  — clang-14 ships libFuzzer).
# Seeds: test/native/topic-cases.ts rows are turned into a starting corpus for topic_fuzz.
set -euo pipefail
SECONDS_PER_TARGET="${1:-60}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$ROOT/build-fuzz"
cmake -S "$ROOT/native" -B "$BUILD" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DSANITIZE=ON -DFUZZ=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

corpus_topic="$BUILD/corpus/topic_fuzz"
corpus_trie="$BUILD/corpus/trie_fuzz"
mkdir -p "$corpus_topic" "$corpus_trie"
# Seed corpus: every filter (flag 1) and topic (flag 0) of the shared case table.
grep -oE "\['[^']*', '[^']*'" "$ROOT/test/native/topic-cases.ts" | while IFS= read -r row; do
  f="$(sed -E "s/^\['([^']*)'.*/\1/" <<<"$row")"
  t="$(sed -E "s/.*, '([^']*)'$/\1/" <<<"$row")"
  printf '\x01%s' "$f" >"$corpus_topic/f_$(printf '%s' "$f" | md5sum | cut -c1-12)"
  printf '\x00%s' "$t" >"$corpus_topic/t_$(printf '%s' "$t" | md5sum | cut -c1-12)"
done

status=0
for target in topic_fuzz trie_fuzz; do
  corpus="$BUILD/corpus/$target"
  echo "== $target: ${SECONDS_PER_TARGET}s"
  if ! (cd "$BUILD" && "./$target" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
        -print_final_stats=1 "$corpus" 2>&1 | tail -n 12); then
    status=1
  fi
done
echo "== trie_stress (ASAN+UBSAN): ${SECONDS_PER_TARGET}s"
"$BUILD/trie_stress" "$SECONDS_PER_TARGET" 3 2 || status=1

TSAN_BUILD="$ROOT/build-tsan"
cmake -S "$ROOT/native" -B "$TSAN_BUILD" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DTSAN=ON >/dev/null
cmake --build "$TSAN_BUILD" -j"$(nproc)" --target trie_stress >/dev/null 2>&1
echo "== trie_stress (TSAN): ${SECONDS_PER_TARGET}s"
TSAN_OPTIONS=halt_on_error=1 "$TSAN_BUILD/trie_stress" "$SECONDS_PER_TARGET" 2 2 || status=1
exit "$status"
