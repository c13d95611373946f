'use strict';
// libtensorflowlite_c's C API through koffi (an FFI with prebuilt binaries on npm: nothing is
// compiled at install). Every C function this package calls is declared here, once, with the
// same names and types as the Python package's table (tflite_edge/_library.py). The library
// is loaded on first use and kept.

const fs = require('fs');
const path = require('path');
const koffi = require('koffi');
const { findLibrary } = require('./platform');

const TfLiteQuantizationParams = koffi.struct('TfLiteQuantizationParams', {
  scale: 'float', zero_point: 'int32_t',
});
const TfLiteXNNPackDelegateOptions = koffi.struct('TfLiteXNNPackDelegateOptions', {
  num_threads: 'int32_t', flags: 'uint32_t', weights_cache: 'void *', handle_variable_ops: 'bool',
});
// void (*reporter)(void* user_data, const char* format, va_list args): a va_list travels as
// one pointer-sized value on every ABI edgeforge targets.
const ErrorReporter = koffi.proto('void TfLiteEdgeErrorReporter(void *user, const char *fmt, void *args)');

const REQUIRED = [
  'const char *TfLiteVersion()',
  'void *TfLiteModelCreateWithErrorReporter(const void *data, size_t size, TfLiteEdgeErrorReporter *reporter, void *user)',
  'void TfLiteModelDelete(void *model)',
  'void *TfLiteInterpreterOptionsCreate()',
  'void TfLiteInterpreterOptionsDelete(void *options)',
  'void TfLiteInterpreterOptionsSetNumThreads(void *options, int32_t n)',
  'void TfLiteInterpreterOptionsSetErrorReporter(void *options, TfLiteEdgeErrorReporter *reporter, void *user)',
  'void *TfLiteInterpreterCreate(void *model, void *options)',
  'void TfLiteInterpreterDelete(void *interpreter)',
  'int32_t TfLiteInterpreterGetInputTensorCount(void *interpreter)',
  'void *TfLiteInterpreterInputTensorIndices(void *interpreter)',
  'int TfLiteInterpreterResizeInputTensor(void *interpreter, int32_t index, const int *dims, int32_t n)',
  'int TfLiteInterpreterAllocateTensors(void *interpreter)',
  'int TfLiteInterpreterInvoke(void *interpreter)',
  'int32_t TfLiteInterpreterGetOutputTensorCount(void *interpreter)',
  'void *TfLiteInterpreterOutputTensorIndices(void *interpreter)',
  'void *TfLiteInterpreterGetTensor(void *interpreter, int index)',
  'int TfLiteTensorType(void *tensor)',
  'int32_t TfLiteTensorNumDims(void *tensor)',
  'int32_t TfLiteTensorDim(void *tensor, int32_t d)',
  'size_t TfLiteTensorByteSize(void *tensor)',
  'const char *TfLiteTensorName(void *tensor)',
  'TfLiteQuantizationParams TfLiteTensorQuantizationParams(void *tensor)',
  'int TfLiteTensorCopyFromBuffer(void *tensor, const void *data, size_t size)',
  'int TfLiteTensorCopyToBuffer(void *tensor, void *data, size_t size)',
];
// Experimental: not every build of the library has them.
const OPTIONAL = [
  'int TfLiteInterpreterModifyGraphWithDelegate(void *interpreter, void *delegate)',
  'int32_t TfLiteInterpreterGetSignatureCount(void *interpreter)',
  'const char *TfLiteInterpreterGetSignatureKey(void *interpreter, int32_t n)',
  'void *TfLiteInterpreterGetSignatureRunner(void *interpreter, const char *key)',
  'size_t TfLiteSignatureRunnerGetInputCount(void *runner)',
  'const char *TfLiteSignatureRunnerGetInputName(void *runner, int32_t n)',
  'int TfLiteSignatureRunnerAllocateTensors(void *runner)',
  'void *TfLiteSignatureRunnerGetInputTensor(void *runner, const char *name)',
  'int TfLiteSignatureRunnerInvoke(void *runner)',
  'size_t TfLiteSignatureRunnerGetOutputCount(void *runner)',
  'const char *TfLiteSignatureRunnerGetOutputName(void *runner, int32_t n)',
  'void *TfLiteSignatureRunnerGetOutputTensor(void *runner, const char *name)',
  'void TfLiteSignatureRunnerDelete(void *runner)',
  'TfLiteXNNPackDelegateOptions TfLiteXNNPackDelegateOptionsDefault()',
  'void *TfLiteXNNPackDelegateCreate(const TfLiteXNNPackDelegateOptions *options)',
  'void TfLiteXNNPackDelegateDelete(void *delegate)',
];

/** TfLiteStatus names (c_api_types.h). */
const STATUS = ['kTfLiteOk', 'kTfLiteError', 'kTfLiteDelegateError', 'kTfLiteApplicationError',
  'kTfLiteDelegateDataNotFound', 'kTfLiteDelegateDataWriteError', 'kTfLiteDelegateDataReadError',
  'kTfLiteUnresolvedOps', 'kTfLiteCancelled'];

class LibraryError extends Error {
  constructor(message) { super(message); this.name = 'LibraryError'; }
}

function functionName(prototype) {
  return prototype.match(/([A-Za-z0-9_]+)\(/)[1];
}

function declare(lib, prototypes, path, required) {
  const api = {};
  const missing = [];
  for (const prototype of prototypes) {
    const name = functionName(prototype);
    try {
      api[name] = lib.func(prototype);
    } catch (err) {
      if (required) missing.push(name);
      api[name] = () => { throw new LibraryError(`${name} is not exported by ${path}`); };
      api[name].missing = true;
    }
  }
  if (missing.length) {
    throw new LibraryError(`${path} is not a TensorFlow Lite C library: it lacks ${missing.join(', ')}`);
  }
  return api;
}

/** libc's vsnprintf, to render TFLite's printf-style messages; null where none is found. */
function findVsnprintf() {
  for (const name of ['libc.so.6', 'libc.so', `libc.musl-${process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch}.so.1`]) {
    try {
      return koffi.load(name).func('int vsnprintf(_Out_ char *buf, size_t size, const char *fmt, void *args)');
    } catch (err) {
      // try the next name
    }
  }
  return null;
}

const RTLD_NOW = 2;
const RTLD_NODELETE = 0x1000; // glibc's value; musl never unloads a library anyway
let dlopen;
let dlsym = null;
const handles = new Map(); // file -> its dlopen handle (for dlsym)

/**
 * koffi.load(file), with the library pinned in memory for the rest of the process (as
 * Python's ctypes leaves it): koffi unloads libraries when Node tears down, before exit()
 * runs the destructors they registered, and a library whose C++ runtime registered some
 * (libtensorflowlite_c, delegates) would crash the exit. An extra dlopen(RTLD_NODELETE)
 * keeps it mapped.
 */
function loadPinned(file) {
  if (dlopen === undefined) {
    dlopen = null;
    for (const name of ['libc.so.6', 'libdl.so.2']) {
      try {
        const libdl = koffi.load(name);
        dlopen = libdl.func('void *dlopen(const char *file, int flags)');
        dlsym = libdl.func('void *dlsym(void *handle, const char *name)');
        break;
      } catch (err) {
        // glibc before 2.34 has dlopen in libdl; musl needs none
      }
    }
  }
  const lib = koffi.load(file);
  if (dlopen !== null && process.platform === 'linux') handles.set(file, dlopen(file, RTLD_NOW | RTLD_NODELETE));
  return lib;
}

// The shim (libtflite_edge_shim.so beside the library, as the wheels ship it): TFLite's C API
// calls that can throw a C++ exception, each run inside a catch (...). Without it such an
// exception (std::bad_alloc from the arena, say) ends the process; with it, the call throws
// a TfLiteCppError. The shim gets the C API's functions by address from the library loaded
// here, so it never reaches a second copy of TFLite (tflite_edge_shim.h).
const SHIM_NAME = 'libtflite_edge_shim.so';
const SHIM_EXCEPTION = 256;
const SHIM_KINDS = { 1: 'runtime_error', 2: 'bad_alloc', 3: 'value_error', 4: 'index_error',
  5: 'overflow_error', 6: 'missing_function' };
const HANDED_OVER = [
  'TfLiteModelCreateWithErrorReporter', 'TfLiteInterpreterCreate', 'TfLiteInterpreterAllocateTensors',
  'TfLiteInterpreterInvoke', 'TfLiteInterpreterResizeInputTensor',
  'TfLiteInterpreterModifyGraphWithDelegate', 'TfLiteXNNPackDelegateCreate',
  'TfLiteInterpreterGetSignatureRunner', 'TfLiteSignatureRunnerAllocateTensors',
  'TfLiteSignatureRunnerInvoke',
];

class TfLiteCppError extends Error {
  constructor(call, kind, message) {
    super(`${call}: TensorFlow Lite threw a C++ exception (${message})`);
    this.name = 'TfLiteCppError';
    this.kind = kind;
  }
}

/**
 * Replace api's throwing functions by the shim's guarded ones (same arguments and results;
 * a caught exception throws TfLiteCppError). Returns the shim's path, or null without one.
 */
function guard(api, libraryPath) {
  const file = path.join(path.dirname(libraryPath), SHIM_NAME);
  const handle = handles.get(libraryPath);
  if (!fs.existsSync(file) || !handle || dlsym === null) return null;
  const shim = loadPinned(file);
  if (shim.func('int tflite_edge_shim_abi_version()')() !== 1) return null;
  const setFunction = shim.func('int tflite_edge_shim_set_function(const char *name, void *fn)');
  for (const name of HANDED_OVER) {
    const address = dlsym(handle, name);
    if (address) setFunction(name, address);
  }
  const message = shim.func('const char *tflite_edge_shim_message()');
  const fail = (call, r, text) => new TfLiteCppError(call, SHIM_KINDS[r - SHIM_EXCEPTION] || 'unknown', text);
  const check = (call, r) => {
    if (r >= SHIM_EXCEPTION) throw fail(call, r, message() || 'unknown exception');
    return r;
  };
  const status = (name, prototype) => {
    const fn = shim.func(prototype);
    const wrapped = (...args) => check(name, fn(...args));
    // on koffi's worker thread; the shim's message is that thread's, so the kind says what
    wrapped.async = (...args) => {
      const callback = args.pop();
      fn.async(...args, (err, r) => {
        if (err) return callback(err);
        if (r >= SHIM_EXCEPTION) return callback(fail(name, r, SHIM_KINDS[r - SHIM_EXCEPTION]));
        return callback(null, r);
      });
    };
    return wrapped;
  };
  const object = (name, prototype) => {
    const fn = shim.func(prototype);
    return (...args) => {
      const out = [null];
      check(name, fn(...args, out));
      return out[0];
    };
  };
  api.TfLiteModelCreateWithErrorReporter = object('TfLiteModelCreateWithErrorReporter',
    'int tflite_edge_shim_model_create(const void *data, size_t size, TfLiteEdgeErrorReporter *reporter, void *user, _Out_ void **model)');
  api.TfLiteInterpreterCreate = object('TfLiteInterpreterCreate',
    'int tflite_edge_shim_interpreter_create(void *model, void *options, _Out_ void **interpreter)');
  api.TfLiteInterpreterAllocateTensors = status('AllocateTensors', 'int tflite_edge_shim_allocate_tensors(void *interpreter)');
  api.TfLiteInterpreterInvoke = status('Invoke', 'int tflite_edge_shim_invoke(void *interpreter)');
  api.TfLiteInterpreterResizeInputTensor = status('ResizeInputTensor',
    'int tflite_edge_shim_resize_input_tensor(void *interpreter, int32_t index, const int *dims, int32_t n)');
  api.TfLiteInterpreterModifyGraphWithDelegate = status('ModifyGraphWithDelegate',
    'int tflite_edge_shim_modify_graph_with_delegate(void *interpreter, void *delegate)');
  if (!api.TfLiteXNNPackDelegateCreate.missing) {
    api.TfLiteXNNPackDelegateCreate = object('TfLiteXNNPackDelegateCreate',
      'int tflite_edge_shim_xnnpack_delegate_create(const TfLiteXNNPackDelegateOptions *options, _Out_ void **delegate)');
  }
  if (!api.TfLiteInterpreterGetSignatureRunner.missing) {
    api.TfLiteInterpreterGetSignatureRunner = object('GetSignatureRunner',
      'int tflite_edge_shim_get_signature_runner(void *interpreter, const char *key, _Out_ void **runner)');
    api.TfLiteSignatureRunnerAllocateTensors = status('SignatureRunner AllocateTensors',
      'int tflite_edge_shim_signature_runner_allocate_tensors(void *runner)');
    api.TfLiteSignatureRunnerInvoke = status('SignatureRunner Invoke',
      'int tflite_edge_shim_signature_runner_invoke(void *runner)');
  }
  return file;
}

let loaded = null;

/** {path, source, version, api, format(fmt, args)} of the library, loaded once. */
function loadLibrary() {
  if (loaded !== null) return loaded;
  const found = findLibrary();
  let lib;
  try {
    lib = loadPinned(found.path);
  } catch (err) {
    throw new LibraryError(`tflite-edge cannot load ${found.path} (from ${found.source}): ${err.message}`);
  }
  const api = { ...declare(lib, REQUIRED, found.path, true), ...declare(lib, OPTIONAL, found.path, false) };
  const vsnprintf = findVsnprintf();
  const format = (fmt, args) => {
    if (fmt === null || fmt === undefined) return '';
    if (vsnprintf === null || args === null) return fmt;
    const buf = Buffer.alloc(4096);
    vsnprintf(buf, buf.length, fmt, args);
    const end = buf.indexOf(0);
    return buf.toString('utf8', 0, end < 0 ? buf.length : end);
  };
  const version = api.TfLiteVersion();
  const shim = guard(api, found.path);
  loaded = {
    path: found.path, source: found.source, platform: found.platform, lib, api, version,
    format, shim,
  };
  return loaded;
}

module.exports = {
  koffi, ErrorReporter, LibraryError, STATUS, TfLiteCppError, TfLiteXNNPackDelegateOptions,
  loadLibrary, loadPinned,
};
