# XNNPACK's microkernels without clang's SLP vectorizer (-fno-slp-vectorize), on x86.
#
# The microkernels are vectorized by hand (intrinsics); what the SLP vectorizer finds left in
# them is the pointer arithmetic, and there it costs: clang 22 packed four of the seven row
# pointers of the f32 IGEMM kernels (7x16 and 7x32, AVX-512) into a ymm register, so each step
# of the inner loop added to them with vpaddq and moved each one back with vmovq / vpextrq /
# vextracti128 before its FMA (6 extra instructions per 7 FMAs). tflite-runtime 2.14.0's build
# of the 7x16 kernel has plain pointer registers and took 0.78x of our build's time in it,
# both in one process (perf). Without SLP the moves are gone and mediapipe's hand_recrop went
# from 1.30x to 1.24x tflite-runtime's time (docs/benchmarks.md 2f). x86 only: on Linux ARM
# the f32 GEMMs are XNNPACK's assembly kernels, and no ARM build's speed is measured here
# (QEMU; macOS arm64's intrinsics GEMMs are not run at all).
#
# Runs at the end of tensorflow/lite/c's top directory (cmake_language(DEFER)), when
# XNNPACK's targets exist.
function(_tflite_edge_xnnpack_kernels)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86|x86)$")
    foreach(_target microkernels-prod microkernels-all)
      if(TARGET ${_target})
        target_compile_options(${_target} PRIVATE
                               "$<$<COMPILE_LANG_AND_ID:C,Clang>:-fno-slp-vectorize>")
      endif()
    endforeach()
  endif()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tflite_edge_xnnpack_kernels)
