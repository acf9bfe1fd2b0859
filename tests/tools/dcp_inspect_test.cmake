# dcp-inspect end to end: a store made by dcp-demo (1 rank, two steps), then
# every subcommand's output and exit code, the errors users meet, and a
# damaged store.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(root ${WORK}/store)

function(run expect_rc)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect_rc)
    message(FATAL_ERROR "${ARGN}: exit ${rc}, expected ${expect_rc}\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

function(expect text haystack)
  string(FIND "${haystack}" "${text}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "expected '${text}' in:\n${haystack}")
  endif()
endfunction()

set(model --hidden 64 --layers 2 --vocab 128 --ffn 128)
run(0 ${DEMO} save --root ${root} --step 42 ${model})
run(0 ${DEMO} save --root ${root} --step 50 ${model})

# ls (the default)
run(0 ${INSPECT} ${root})
expect("      42  " "${out}")
expect("ranks" "${out}")
expect("unique" "${out}")
run(0 ${INSPECT} ${root} ls --json)
expect("\"step\": 42" "${out}")
expect("\"unique_bytes\"" "${out}")
run(0 ${INSPECT} --json ${root})
expect("\"step\": 50" "${out}")

# show
run(0 ${INSPECT} ${root} show 42)
expect("embedding.word_embeddings.weight" "${out}")
expect("bfloat16" "${out}")
expect("(128, 64)" "${out}")
expect("rng_state/shard_0.0_1.1" "${out}")
expect("iteration: 42" "${out}")
run(0 ${INSPECT} ${root} show latest --keys "embedding*" --json)
expect("\"global_shape\"" "${out}")
expect("\"step\": 50" "${out}")
expect("\"compression_ratio\"" "${out}")
string(FIND "${out}" "output_layer" pos)
if(NOT pos EQUAL -1)
  message(FATAL_ERROR "--keys did not filter:\n${out}")
endif()

# layout
run(0 ${INSPECT} ${root} layout 42 embedding.word_embeddings.weight)
expect("coverage: exact" "${out}")
expect("|0000000000000000000000000000000000000000000000000000000000000000|" "${out}")
run(0 ${INSPECT} ${root} layout 42 decoder.layers.mlp.linear_fc1.weight --json)
expect("\"exact\": true" "${out}")

# verify
run(0 ${INSPECT} ${root} verify)
expect("verified 2 steps" "${out}")
expect("OK: no problems" "${out}")
run(0 ${INSPECT} ${root} verify 42 --json)
expect("\"ok\": true" "${out}")

# diff: the same values, one step later.
run(0 ${INSPECT} ${root} diff 42 50)
expect("0.00%" "${out}")
expect("60 tensors unchanged" "${out}")
expect("common state changed: iteration" "${out}")
run(0 ${INSPECT} ${root} diff 42 50 --exact --json)
expect("\"changed_bytes\": 0" "${out}")

# dump
run(0 ${INSPECT} ${root} dump 42 embedding.word_embeddings.weight --region 0:2,0:4)
expect("region [0:2, 0:4] (8 elements)" "${out}")
expect("min " "${out}")
run(0 ${INSPECT} ${root} dump 42 embedding.word_embeddings.weight --npy ${WORK}/emb.npy --json)
expect("\"npy\"" "${out}")
file(READ ${WORK}/emb.npy npy_head LIMIT 6 HEX)
if(NOT npy_head STREQUAL "934e554d5059")
  message(FATAL_ERROR "emb.npy does not start with the .npy magic: ${npy_head}")
endif()

# export
run(0 ${INSPECT} ${root} export 42 --safetensors ${WORK}/model.safetensors)
expect("exported 60 tensors of step 42" "${out}")
file(SIZE ${WORK}/model.safetensors size)
if(size LESS 1000000)
  message(FATAL_ERROR "model.safetensors is only ${size} bytes")
endif()

# common
run(0 ${INSPECT} ${root} common 42)
expect("\"iteration\": 42" "${out}")

# every subcommand has --help and --json
foreach(sub ls show layout verify diff dump export common)
  run(0 ${INSPECT} ${root} ${sub} --help)
  expect("--json" "${out}")
endforeach()
run(0 ${INSPECT} --help)
expect("export" "${out}")

# errors: exit 1 with a message naming what is wrong, 2 for bad usage
run(1 ${INSPECT} ${root} show 43)
expect("step 43 is not committed" "${err}")
run(1 ${INSPECT} ${root} dump 42 nope)
expect("tensor 'nope' is not in step 42" "${err}")
run(1 ${INSPECT} ${root} layout 42 nope)
expect("tensor 'nope' is not in step 42" "${err}")
run(2 ${INSPECT} ${root} dump 42 embedding.word_embeddings.weight --region 0:999)
expect("axis 0 of the region is outside [0, 128)" "${err}")
run(2 ${INSPECT} ${root} show abc)
expect("'abc' is not a step number" "${err}")
run(1 ${INSPECT} ${WORK}/missing)
expect("does not exist" "${err}")
file(WRITE ${WORK}/notastore/file "x")
run(1 ${INSPECT} ${WORK}/notastore verify)
expect("is not a dcp store" "${err}")
run(2 ${INSPECT})
run(2 ${INSPECT} ${root} diff 42)
run(2 ${INSPECT} ${root} export 42)

# a damaged store: verify and ls say so, with exit code 1
file(WRITE ${root}/steps/00000000000000000050.manifest "garbage")
run(1 ${INSPECT} ${root} verify)
expect("[manifest] step 50: " "${out}")
run(1 ${INSPECT} ${root} ls)
expect("unreadable: " "${out}")
run(0 ${INSPECT} ${root} verify 42)
