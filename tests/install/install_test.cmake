# find_package(dcp) from an installed tree, as other projects use it:
#   full  what this machine has: the CUDA device code where dcp has it and the
#         toolkit is here, and dcp::torch where dcp built it;
#   bare  a CPU-only project: CUDAToolkit and Torch unfindable, both
#         components optional; it must link (without the CUDA runtime) and run;
#   and a required component that is missing fails with the reason.
# Inputs: BUILD, WORK, SRC, GENERATOR; CUDA and TORCH (dcp built with them);
# TORCH_DIR; CXX and SANITIZE_FLAGS (a sanitizer build's libraries need the
# same compiler and flags in the consumer).
file(REMOVE_RECURSE ${WORK})
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${rc}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()
function(expect text haystack)
  string(FIND "${haystack}" "${text}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "expected '${text}' in:\n${haystack}")
  endif()
endfunction()
# Whether `binary` contains the CUDA runtime (linked statically by dcp's device code).
find_program(NM nm REQUIRED)
function(has_cuda_runtime binary want)
  step(${NM} ${binary})
  string(FIND "${out}" "cudaGetDeviceCount" pos)
  if(want AND pos EQUAL -1)
    message(FATAL_ERROR "${binary} does not contain the CUDA runtime")
  elseif(NOT want AND NOT pos EQUAL -1)
    message(FATAL_ERROR "${binary} refers to the CUDA runtime")
  endif()
endfunction()

step(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix)
set(configure ${CMAKE_COMMAND} -S ${SRC} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK}/prefix)
if(SANITIZE_FLAGS)
  list(APPEND configure -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${SANITIZE_FLAGS}"
       "-DCMAKE_EXE_LINKER_FLAGS=${SANITIZE_FLAGS}")
endif()
set(no_cuda -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON)
set(no_torch -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON)

if(CUDA)
  set(cuda TRUE)
else()
  set(cuda FALSE)
endif()
if(TORCH)
  step(${configure} -B ${WORK}/full -DDCP_COMPONENTS=torch -DTorch_DIR=${TORCH_DIR})
  expect("dcp components: cuda=${cuda} torch=TRUE" "${out}")
else()
  step(${configure} -B ${WORK}/full)
  expect("dcp components: cuda=${cuda} torch=FALSE" "${out}")
endif()
step(${CMAKE_COMMAND} --build ${WORK}/full)
step(${WORK}/full/consumer ${WORK}/store-full)
expect("consumer OK" "${out}")
has_cuda_runtime(${WORK}/full/consumer ${cuda})
if(TORCH)
  step(${WORK}/full/consumer_torch)
  expect("consumer_torch OK" "${out}")
endif()

step(${configure} -B ${WORK}/bare ${no_cuda} ${no_torch} -DDCP_OPTIONAL_COMPONENTS=cuda,torch)
expect("dcp components: cuda=FALSE torch=FALSE" "${out}")
step(${CMAKE_COMMAND} --build ${WORK}/bare)
step(${WORK}/bare/consumer ${WORK}/store-bare)
expect("consumer OK" "${out}")
has_cuda_runtime(${WORK}/bare/consumer FALSE)

foreach(comp cuda torch)
  set(args ${no_cuda} ${no_torch} -DDCP_COMPONENTS=${comp})
  execute_process(COMMAND ${configure} -B ${WORK}/need-${comp} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "COMPONENTS ${comp} without it configured:\n${out}")
  endif()
  expect("component '${comp}' is not available" "${err}")
endforeach()
