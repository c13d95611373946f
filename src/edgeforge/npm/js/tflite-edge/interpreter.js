'use strict';
// Interpreter and SignatureRunner over the C API: the Python package's API in JS spelling
// (tflite_edge.Interpreter, itself tflite_runtime's), with TypedArrays for tensors.

const fs = require('fs');
const { koffi, ErrorReporter, STATUS, loadLibrary } = require('./capi');

// TfLiteType (c_api_types.h) -> [dtype name, TypedArray class].
const TYPES = {
  1: ['float32', Float32Array], 2: ['int32', Int32Array], 3: ['uint8', Uint8Array],
  4: ['int64', BigInt64Array], 5: ['string', Uint8Array], 6: ['bool', Uint8Array],
  7: ['int16', Int16Array], 9: ['int8', Int8Array], 10: ['float16', Uint16Array],
  11: ['float64', Float64Array], 13: ['uint64', BigUint64Array], 16: ['uint32', Uint32Array],
  17: ['uint16', Uint16Array],
};

// What an interpreter owns natively, apart from the JS object, so that it can be freed when
// the object is collected (FinalizationRegistry) or at exit: TFLite's worker threads
// (XNNPACK's thread pool) must stop before the process tears down.
const live = new Set();

function freeNative(n) {
  live.delete(n);
  for (const runner of n.runners) {
    if (runner.ptr) n.api.TfLiteSignatureRunnerDelete(runner.ptr);
    runner.ptr = null;
  }
  n.runners = [];
  if (n.ptr) n.api.TfLiteInterpreterDelete(n.ptr);
  n.ptr = null;
  if (n.xnnpack) n.api.TfLiteXNNPackDelegateDelete(n.xnnpack);
  n.xnnpack = null;
  if (n.modelMemory) koffi.free(n.modelMemory);
  n.modelMemory = null;
  if (n.errors) n.errors.close();
  n.errors = null;
}

const collected = new FinalizationRegistry(freeNative);
process.on('exit', () => {
  for (const n of [...live]) {
    if (!n.busy) freeNative(n);
  }
});

class TfLiteError extends Error {
  constructor(message) { super(message); this.name = 'TfLiteError'; }
}

/** Collects what TFLite reports through its error reporter, for the next error raised. */
class ErrorLog {
  constructor(library) {
    this.messages = [];
    this.callback = koffi.register((user, fmt, args) => {
      this.messages.push(library.format(fmt, args));
    }, koffi.pointer(ErrorReporter));
  }
  clear() { this.messages = []; }
  take(fallback) {
    const text = this.messages.filter(Boolean).join('\n') || fallback;
    this.messages = [];
    return text;
  }
  close() { koffi.unregister(this.callback); }
}

function tensorInfo(api, tensor, index) {
  const type = api.TfLiteTensorType(tensor);
  const shape = [];
  for (let d = 0, n = api.TfLiteTensorNumDims(tensor); d < n; d++) shape.push(api.TfLiteTensorDim(tensor, d));
  const q = api.TfLiteTensorQuantizationParams(tensor);
  return {
    name: api.TfLiteTensorName(tensor) || '', index, shape, dtype: (TYPES[type] || [`type${type}`])[0],
    quantization: { scale: q.scale, zeroPoint: q.zero_point },
    bytes: Number(api.TfLiteTensorByteSize(tensor)),
  };
}

/** What a tensor's reads and writes need: its pointer and type, its byte size once known. */
function tensorRef(api, ptr) {
  return { ptr, type: api.TfLiteTensorType(ptr), bytes: null };
}

function readTensor(api, ref, what) {
  const entry = TYPES[ref.type];
  if (!entry || entry[0] === 'string') throw new TypeError(`${what}: tensors of TfLiteType ${ref.type} cannot be read as a TypedArray`);
  // asked every time: an output's size may change at invoke (dynamic shapes)
  const bytes = Number(api.TfLiteTensorByteSize(ref.ptr));
  const out = new entry[1](bytes / entry[1].BYTES_PER_ELEMENT);
  if (bytes && api.TfLiteTensorCopyToBuffer(ref.ptr, out, bytes) !== 0) throw new TfLiteError(`${what}: TfLiteTensorCopyToBuffer failed (tensors not allocated?)`);
  return out;
}

function writeTensor(api, ref, value, what) {
  const entry = TYPES[ref.type] || [`type${ref.type}`, null];
  if (ref.bytes === null) ref.bytes = Number(api.TfLiteTensorByteSize(ref.ptr));
  const bytes = ref.bytes;
  if (!ArrayBuffer.isView(value)) throw new TypeError(`${what}: expected a ${entry[1] ? entry[1].name : 'TypedArray'} (${entry[0]}), got ${typeof value}`);
  const raw = value instanceof Uint8Array && !(value instanceof Uint8ClampedArray);
  if (!raw && entry[1] !== null && !(value instanceof entry[1])) {
    throw new TypeError(`${what}: the tensor is ${entry[0]}; got a ${value.constructor.name} (pass a ${entry[1].name}, or its bytes as a Uint8Array)`);
  }
  if (value.byteLength !== bytes) {
    const shape = tensorInfo(api, ref.ptr, -1).shape;
    throw new RangeError(`${what}: the tensor has ${bytes} bytes (${entry[0]} [${shape}]); got ${value.byteLength}`);
  }
  if (bytes && api.TfLiteTensorCopyFromBuffer(ref.ptr, value, bytes) !== 0) throw new TfLiteError(`${what}: TfLiteTensorCopyFromBuffer failed (tensors not allocated?)`);
}

function readModel(model) {
  if (typeof model === 'string') {
    try {
      return { data: fs.readFileSync(model), what: `'${model}'` };
    } catch (err) {
      throw new Error(`Could not open '${model}': ${err.message}`);
    }
  }
  if (ArrayBuffer.isView(model)) return { data: model, what: 'the model buffer' };
  if (model instanceof ArrayBuffer) return { data: new Uint8Array(model), what: 'the model buffer' };
  throw new TypeError('Interpreter: pass a model path (string) or its bytes (Buffer, Uint8Array, ArrayBuffer)');
}

class Interpreter {
  /**
   * @param model a .tflite path, or the model's bytes
   * @param options {numThreads, delegates: [Delegate], useXnnpack: true}
   */
  constructor(model, options = {}) {
    const { numThreads, delegates = [], useXnnpack = true } = options;
    if (numThreads !== undefined && (!Number.isInteger(numThreads) || numThreads < 1)) {
      throw new RangeError('numThreads must be an integer >= 1');
    }
    const { data, what } = readModel(model);
    if (data.byteLength < 8) throw new Error(`Could not create a TFLite model from ${what}: ${data.byteLength} bytes is too short`);
    const lib = loadLibrary();
    const api = lib.api;
    this._api = api;
    this._errors = new ErrorLog(lib);
    this._native = { api, ptr: null, xnnpack: null, modelMemory: null, errors: this._errors, runners: [], busy: false };
    live.add(this._native);
    collected.register(this, this._native, this._native);
    // TFLite reads the model's bytes for the interpreter's whole life: a copy koffi keeps
    // still (a Buffer may be moved or collected).
    const memory = koffi.alloc('uint8_t', data.byteLength);
    this._native.modelMemory = memory;
    new Uint8Array(koffi.view(memory, data.byteLength)).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const m = api.TfLiteModelCreateWithErrorReporter(memory, data.byteLength, this._errors.callback, null);
    if (!m) {
      const message = this._errors.take('the flatbuffer is not a valid TFLite model');
      this._free();
      throw new Error(`Could not create a TFLite model from ${what}: ${message}`);
    }
    let interp;
    const opts = api.TfLiteInterpreterOptionsCreate();
    try {
      api.TfLiteInterpreterOptionsSetErrorReporter(opts, this._errors.callback, null);
      if (numThreads !== undefined) api.TfLiteInterpreterOptionsSetNumThreads(opts, numThreads);
      interp = api.TfLiteInterpreterCreate(m, opts);
    } finally {
      api.TfLiteInterpreterOptionsDelete(opts);
      api.TfLiteModelDelete(m);
    }
    if (!interp) {
      const message = this._errors.take('TfLiteInterpreterCreate failed');
      this._free();
      throw new Error(`Could not create an interpreter for ${what}: ${message}`);
    }
    this._ptr = interp;
    this._native.ptr = interp;
    this._refs = new Map();
    this._delegates = [...delegates];
    this._pendingXnnpack = useXnnpack ? { numThreads } : null;
    for (const d of this._delegates) {
      this._errors.clear();
      const status = api.TfLiteInterpreterModifyGraphWithDelegate(interp, d.pointer);
      if (status !== 0) throw new TfLiteError(this._errors.take(`applying ${d} failed (${STATUS[status] || status})`));
    }
    this._inputs = this._indices(api.TfLiteInterpreterGetInputTensorCount, api.TfLiteInterpreterInputTensorIndices);
    this._outputs = this._indices(api.TfLiteInterpreterGetOutputTensorCount, api.TfLiteInterpreterOutputTensorIndices);
  }

  _indices(countFn, indicesFn) {
    const n = countFn(this._ptr);
    return n ? Array.from(koffi.decode(indicesFn(this._ptr), 'int', n)) : [];
  }

  _free() {
    collected.unregister(this._native);
    freeNative(this._native);
    this._ptr = null;
    this._errors = null;
  }

  get _busy() { return this._native.busy; }

  set _busy(value) { this._native.busy = value; }

  _ready(what) {
    if (!this._ptr) throw new Error(`${what}: the interpreter is closed`);
    if (this._busy) throw new Error(`${what}: invokeAsync() on this interpreter has not finished yet`);
  }

  _check(status, call) {
    if (status !== 0) throw new TfLiteError(this._errors.take(`${call} failed (${STATUS[status] || status})`));
  }

  _tensor(index, what) {
    const t = Number.isInteger(index) && index >= 0 ? this._api.TfLiteInterpreterGetTensor(this._ptr, index) : null;
    if (!t) throw new RangeError(`${what}: no tensor ${index}`);
    return t;
  }

  /** The tensor's ref, kept until the next allocateTensors/resizeTensorInput (which may move
   *  tensors or change their sizes): setTensor/getTensor then make one or two C calls. */
  _ref(index, what) {
    let ref = this._refs.get(index);
    if (ref === undefined) {
      ref = tensorRef(this._api, this._tensor(index, what));
      this._refs.set(index, ref);
    }
    return ref;
  }

  /** XNNPACK, as tflite_runtime applies its default delegate: at the first allocation,
   *  after the user's delegates, with the interpreter's thread count; a failure is ignored. */
  _applyDefaultDelegate() {
    const pending = this._pendingXnnpack;
    this._pendingXnnpack = null;
    const api = this._api;
    if (pending === null || api.TfLiteXNNPackDelegateCreate.missing) return;
    const options = api.TfLiteXNNPackDelegateOptionsDefault();
    if (pending.numThreads !== undefined) options.num_threads = pending.numThreads;
    const delegate = api.TfLiteXNNPackDelegateCreate(options);
    if (!delegate) return;
    this._native.xnnpack = delegate;
    api.TfLiteInterpreterModifyGraphWithDelegate(this._ptr, delegate);
    this._errors.clear();
  }

  allocateTensors() {
    this._ready('allocateTensors');
    this._applyDefaultDelegate();
    this._errors.clear();
    this._refs.clear();
    this._check(this._api.TfLiteInterpreterAllocateTensors(this._ptr), 'AllocateTensors');
  }

  resizeTensorInput(inputIndex, shape) {
    this._ready('resizeTensorInput');
    const position = this._inputs.indexOf(inputIndex);
    if (position < 0) throw new RangeError(`resizeTensorInput: tensor ${inputIndex} is not an input (inputs: ${this._inputs})`);
    this._refs.clear();
    this._check(this._api.TfLiteInterpreterResizeInputTensor(this._ptr, position, Int32Array.from(shape), shape.length), 'ResizeInputTensor');
  }

  getInputDetails() {
    this._ready('getInputDetails');
    return this._inputs.map((i) => tensorInfo(this._api, this._tensor(i, 'getInputDetails'), i));
  }

  getOutputDetails() {
    this._ready('getOutputDetails');
    return this._outputs.map((i) => tensorInfo(this._api, this._tensor(i, 'getOutputDetails'), i));
  }

  /** Copy `value` (a TypedArray of the tensor's type, or its bytes) into tensor `index`. */
  setTensor(index, value) {
    this._ready('setTensor');
    writeTensor(this._api, this._ref(index, 'setTensor'), value, `setTensor(${index})`);
  }

  /** A copy of tensor `index` as a TypedArray of its type. */
  getTensor(index) {
    this._ready('getTensor');
    return readTensor(this._api, this._ref(index, 'getTensor'), `getTensor(${index})`);
  }

  invoke() {
    this._ready('invoke');
    this._errors.clear();
    this._check(this._api.TfLiteInterpreterInvoke(this._ptr), 'Invoke');
  }

  /** invoke() on a worker thread: the event loop keeps running; the interpreter refuses
   *  other calls until the promise settles. */
  invokeAsync() {
    this._ready('invokeAsync');
    this._errors.clear();
    this._busy = true;
    return new Promise((resolve, reject) => {
      this._api.TfLiteInterpreterInvoke.async(this._ptr, (err, status) => {
        this._busy = false;
        if (err) return reject(err);
        try {
          this._check(status, 'Invoke');
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  /** {signatureKey: {inputs: [names], outputs: [names]}} */
  getSignatureList() {
    this._ready('getSignatureList');
    const api = this._api;
    const out = {};
    for (let i = 0, n = api.TfLiteInterpreterGetSignatureCount(this._ptr); i < n; i++) {
      const key = api.TfLiteInterpreterGetSignatureKey(this._ptr, i);
      const runner = api.TfLiteInterpreterGetSignatureRunner(this._ptr, key);
      try {
        out[key] = { inputs: names(api.TfLiteSignatureRunnerGetInputCount(runner), (j) => api.TfLiteSignatureRunnerGetInputName(runner, j)),
          outputs: names(api.TfLiteSignatureRunnerGetOutputCount(runner), (j) => api.TfLiteSignatureRunnerGetOutputName(runner, j)) };
      } finally {
        api.TfLiteSignatureRunnerDelete(runner);
      }
    }
    return out;
  }

  getSignatureRunner(key) {
    this._ready('getSignatureRunner');
    const keys = Object.keys(this.getSignatureList());
    if (key === undefined) {
      if (keys.length !== 1) throw new Error(`getSignatureRunner: the model has ${keys.length} signatures (${keys}); name one`);
      key = keys[0];
    }
    if (!keys.includes(key)) throw new Error(`getSignatureRunner: no signature ${JSON.stringify(key)} (signatures: ${keys})`);
    return new SignatureRunner(this, key);
  }

  /** Free the interpreter now (else it lives until the process ends). */
  close() {
    if (this._busy) throw new Error('close: invokeAsync() on this interpreter has not finished yet');
    this._free();
  }
}

function names(count, nameAt) {
  const out = [];
  for (let j = 0; j < Number(count); j++) out.push(nameAt(j));
  return out;
}

class SignatureRunner {
  constructor(interpreter, key) {
    this._interpreter = interpreter;
    this._api = interpreter._api;
    this.key = key;
    // the pointer lives in the interpreter's native record: deleted before the interpreter
    this._native = { ptr: this._api.TfLiteInterpreterGetSignatureRunner(interpreter._ptr, key) };
    interpreter._native.runners.push(this._native);
    const sig = interpreter.getSignatureList()[key];
    this.inputs = sig.inputs;
    this.outputs = sig.outputs;
    this._allocated = false;
  }

  get _ptr() {
    if (!this._native.ptr) throw new Error(`signature ${this.key}: the interpreter is closed`);
    return this._native.ptr;
  }

  _tensors(names, get) {
    const out = {};
    for (const name of names) out[name] = tensorInfo(this._api, get(this._ptr, name), -1);
    return out;
  }

  getInputDetails() { return this._tensors(this.inputs, this._api.TfLiteSignatureRunnerGetInputTensor); }

  getOutputDetails() { return this._tensors(this.outputs, this._api.TfLiteSignatureRunnerGetOutputTensor); }

  _prepare(inputs) {
    this._interpreter._ready(`signature ${this.key}`);
    const api = this._api;
    for (const name of Object.keys(inputs)) {
      if (!this.inputs.includes(name)) throw new Error(`signature ${this.key}: no input ${JSON.stringify(name)} (inputs: ${this.inputs})`);
    }
    if (!this._allocated) {
      this._interpreter._check(api.TfLiteSignatureRunnerAllocateTensors(this._ptr), 'SignatureRunner AllocateTensors');
      this._allocated = true;
    }
    for (const [name, value] of Object.entries(inputs)) {
      writeTensor(api, tensorRef(api, api.TfLiteSignatureRunnerGetInputTensor(this._ptr, name)), value, `signature ${this.key} input ${name}`);
    }
  }

  _results() {
    const out = {};
    for (const name of this.outputs) {
      out[name] = readTensor(this._api, tensorRef(this._api, this._api.TfLiteSignatureRunnerGetOutputTensor(this._ptr, name)), `signature ${this.key} output ${name}`);
    }
    return out;
  }

  /** Run the signature on {inputName: TypedArray}; {outputName: TypedArray}. */
  run(inputs) {
    this._prepare(inputs);
    this._interpreter._check(this._api.TfLiteSignatureRunnerInvoke(this._ptr), 'SignatureRunner Invoke');
    return this._results();
  }

  runAsync(inputs) {
    this._prepare(inputs);
    const interpreter = this._interpreter;
    interpreter._busy = true;
    return new Promise((resolve, reject) => {
      this._api.TfLiteSignatureRunnerInvoke.async(this._ptr, (err, status) => {
        interpreter._busy = false;
        if (err) return reject(err);
        try {
          interpreter._check(status, 'SignatureRunner Invoke');
          resolve(this._results());
        } catch (e) {
          reject(e);
        }
      });
    });
  }
}

module.exports = { Interpreter, SignatureRunner, TfLiteError, TYPES };
