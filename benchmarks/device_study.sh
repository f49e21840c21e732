#!/usr/bin/env bash
# Run the simulation study in parallel, one process per setting (and two for the pilot-efficiency
# curve), each writing its own CSVs; resumes from CSVs already in $1. Usage:
#   bash benchmarks/device_study.sh RESULTS_DIR SECONDS [DRAWS]
set -u
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
out=$1; limit=$2; draws=${3:-300}
settings="law_m4_pos_10x law_m4_neg_10x law_m4_pos_100x law_m4_pos_1000x law_m4_scarce_100x law_m8_pos_10x dml_m4_10x dml_m4_scarce_100x"
for s in $settings; do
  mkdir -p "$out/main/$s"
  timeout "$limit" python3 -W ignore -m benchmarks.simulation_study --settings "$s" --worlds 20 \
    --draws "$draws" --output "$out/main/$s" > "$out/main/$s/log.txt" 2>&1 &
done
for s in law_m4_pos_10x dml_m4_10x; do
  mkdir -p "$out/eff/$s"
  timeout "$limit" python3 -W ignore -m benchmarks.simulation_study --efficiency --settings "$s" \
    --worlds 6 --draws "$draws" --output "$out/eff/$s" > "$out/eff/$s/log.txt" 2>&1 &
done
wait
