#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASAN+UBSAN) and runs each for SECONDS, then runs
# the multi-threaded trie_stress for SECONDS under ASAN+UBSAN and under TSAN.
# Needs: cmake, clang (Debian bookworm: apt-get install -y cmake clang  — clang-14 ships libFuzzer).
# Seeds: the fixture tables' topic names and filters start topic_fuzz's corpus (write-corpus.ts).
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
# Seed corpus: the shared fixture tables (test/fixtures/packets.ts topic names and filters,
# UTF-8 edge cases included, and test/native/topic-cases.ts), written by the same script the
# unit tests check (test/unit/packet-fuzz.test.ts); it also writes the packets as corpus/packet.
(cd "$ROOT" && npx tsc -p . >/dev/null)
node "$ROOT/dist/test/fixtures/write-corpus.js" "$BUILD/corpus"

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
