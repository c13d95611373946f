# Wheel size, measured in docs/benchmarks.md (the wheels, and the latency with XNNPACK and
# with the builtin kernels alone, before and after, in one run):
#
# - TFLite's own library target (tensorflow-lite: the builtin kernels, the interpreter, the
#   XNNPACK delegate's graph building) compiled for size (-Os, after the release -O3, so it
#   wins). The hot loops of a float or quantized model run in XNNPACK's microkernels, which keep
#   XNNPACK's own optimisation levels, as do pthreadpool, ruy and the other dependencies.
# - Except the elementwise kernels whose plain loops only -O3 vectorizes: at -Os a CAST, MUL,
#   DIV, EQUAL, SELECT, SQUARED_DIFFERENCE or NEG over 4M elements ran 1.2-3x slower than at
#   -O3 (bench/bench_runtime.py's synthetic models, docs/benchmarks.md 2f). These files keep
#   -O3 (a source's COMPILE_OPTIONS come after the target's, and take it out of the unity
#   build).
# - no_demangle.cc in both libraries: the terminate handler's demangler left out (that file
#   says why).
#
# Runs at the end of tensorflow/lite/c's top directory (cmake_language(DEFER)), when the
# targets exist.
set(_tflite_edge_no_demangle "${CMAKE_CURRENT_LIST_DIR}/no_demangle.cc")
function(_tflite_edge_size)
  target_compile_options(tensorflow-lite PRIVATE -Os)
  get_target_property(_dir tensorflow-lite SOURCE_DIR)
  set(_vectorized cast.cc comparisons.cc div.cc mul.cc neg.cc select.cc squared_difference.cc)
  list(TRANSFORM _vectorized PREPEND "${_dir}/kernels/")
  set_source_files_properties(${_vectorized} TARGET_DIRECTORY tensorflow-lite
                              PROPERTIES COMPILE_OPTIONS -O3)
  target_sources(tensorflowlite_c PRIVATE "${_tflite_edge_no_demangle}")
  target_sources(tflite_edge_shim PRIVATE "${_tflite_edge_no_demangle}")
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tflite_edge_size)
