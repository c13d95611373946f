# Wheel size, measured in docs/benchmarks.md (the wheels, and the latency with XNNPACK and
# with the builtin kernels alone, before and after, in one run):
#
# - TFLite's own library target (tensorflow-lite: the builtin kernels, the interpreter, the
#   XNNPACK delegate's graph building) compiled for size (-Os, after the release -O3, so it
#   wins). The hot loops of a float or quantized model run in XNNPACK's microkernels, which keep
#   XNNPACK's own optimisation levels, as do pthreadpool, ruy and the other dependencies.
# - no_demangle.cc in both libraries: the terminate handler's demangler left out (that file
#   says why).
#
# Runs at the end of tensorflow/lite/c's top directory (cmake_language(DEFER)), when the
# targets exist.
set(_tflite_edge_no_demangle "${CMAKE_CURRENT_LIST_DIR}/no_demangle.cc")
function(_tflite_edge_size)
  target_compile_options(tensorflow-lite PRIVATE -Os)
  target_sources(tensorflowlite_c PRIVATE "${_tflite_edge_no_demangle}")
  target_sources(tflite_edge_shim PRIVATE "${_tflite_edge_no_demangle}")
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tflite_edge_size)
