#!/usr/bin/env bash
# Start, or continue from the committed state in models/tse/bandsplit-d1, the band-split `cpu` TSE run
# (recipes/tse/cpu.yaml) in the background on one core. TSE_RUN=lstm-deg runs the article's LSTM+DEG
# baseline (recipes/tse/lstm-deg-cpu.yaml) instead, into exp/tse/lstm-deg-d1: its resumable state (about
# 70 MB with Adam's moments) is over the 6 MB that models/tse/ may hold, so it continues only on the
# machine that holds that folder (its log and learning curve are committed to models/tse/lstm-deg-d1).
# The bank and speech manifest are rebuilt here if missing (the D1 bank is seeded, so every machine builds
# the same one). Log: exp/tse/bandsplit-d1.log (exp/tse/lstm-deg-d1.log).
#   bash scripts/tse_train_cpu.sh [extra voxa tse train arguments, e.g. --set trainer.max_seconds=3600]
# TSE_PROCS=2 runs it as 2 DDP ranks under torchrun (gloo), one per core, each with half the batch, so the
# global batch stays the recipe's: for when nothing else needs the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
DATA=${VOXA_DATA:-../shared/data}
[ -f exp/data/libri/manifest.jsonl ] || voxa data prepare librispeech "$DATA/librispeech" exp/data/libri
[ -f exp/banks/D1-8k/bank.json ] || voxa tse simulate --preset D1 --rate 8000 --quiet --out exp/banks/D1-8k
mkdir -p exp/tse
# one thread: with the other core busy, two threads made a step 3x slower (shared notes); jemalloc made
# steps 1.5-1.9x faster than glibc's allocator
export OMP_NUM_THREADS=1
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
if [ -f "$JEMALLOC" ]; then
  export LD_PRELOAD="$JEMALLOC" MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1"
fi
RUN=${TSE_RUN:-bandsplit}
case "$RUN" in
  bandsplit) PRESET=cpu; NAME=bandsplit-d1; STATE=(--state models/tse/bandsplit-d1) ;;
  lstm-deg) PRESET=lstm-deg-cpu; NAME=lstm-deg-d1; STATE=() ;;
  *) echo "TSE_RUN must be bandsplit or lstm-deg, not $RUN" >&2; exit 1 ;;
esac
PROCS=${TSE_PROCS:-1}
LAUNCH=(voxa)
if [ "$PROCS" -gt 1 ]; then
  BATCH=$(python -c "from voxa.tasks.tse import preset; print(preset('$PRESET').trainer.batch_size // $PROCS)")
  LAUNCH=(torchrun --standalone --nproc_per_node "$PROCS" "$(command -v voxa)")
  set -- --set "trainer.batch_size=$BATCH" "$@"
fi
setsid nohup "${LAUNCH[@]}" tse train --preset "$PRESET" --bank exp/banks/D1-8k --speech exp/data/libri \
  --exp "exp/tse/$NAME" "${STATE[@]}" "$@" >> "exp/tse/$NAME.log" 2>&1 &
echo "started (pid $!): tail -f exp/tse/$NAME.log"
