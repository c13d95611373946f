// Types of tflite-edge (Node.js binding of TensorFlow Lite's C API).

export type DType = 'float32' | 'int32' | 'uint8' | 'int64' | 'string' | 'bool' | 'int16' | 'int8'
  | 'float16' | 'float64' | 'uint64' | 'uint32' | 'uint16';
export type TensorData = Float32Array | Int32Array | Uint8Array | BigInt64Array | Int16Array | Int8Array
  | Uint16Array | Float64Array | BigUint64Array | Uint32Array;

export interface TensorDetails {
  name: string;
  /** The tensor index setTensor/getTensor take (-1 for a signature's tensors). */
  index: number;
  shape: number[];
  dtype: DType;
  quantization: { scale: number; zeroPoint: number };
  bytes: number;
}

export interface InterpreterOptions {
  numThreads?: number;
  delegates?: Delegate[];
  /** Apply XNNPACK at the first allocateTensors(), as tflite_runtime does (default true). */
  useXnnpack?: boolean;
}

export class Interpreter {
  constructor(model: string | Uint8Array | ArrayBuffer, options?: InterpreterOptions);
  allocateTensors(): void;
  resizeTensorInput(inputIndex: number, shape: number[]): void;
  getInputDetails(): TensorDetails[];
  getOutputDetails(): TensorDetails[];
  setTensor(index: number, value: TensorData): void;
  getTensor(index: number): TensorData;
  invoke(): void;
  /** invoke() on a worker thread; the event loop keeps running. */
  invokeAsync(): Promise<void>;
  getSignatureList(): Record<string, { inputs: string[]; outputs: string[] }>;
  getSignatureRunner(key?: string): SignatureRunner;
  close(): void;
}

export class SignatureRunner {
  readonly key: string;
  readonly inputs: string[];
  readonly outputs: string[];
  getInputDetails(): Record<string, TensorDetails>;
  getOutputDetails(): Record<string, TensorDetails>;
  run(inputs: Record<string, TensorData>): Record<string, TensorData>;
  runAsync(inputs: Record<string, TensorData>): Promise<Record<string, TensorData>>;
}

export class Delegate {
  readonly source: string;
  close(): void;
}

export interface RuntimeInfo { version: string; library: string }

/** What a delegate plugin package's main module exports. */
export interface DelegatePlugin {
  name: string;
  aliases?: string[];
  /** The delegate library for a platform ("linux-arm64", ...). */
  path(platform: string, runtime: RuntimeInfo): string;
  /** The user's options as the key/value strings the library takes. */
  serializeOptions?(options: Record<string, unknown>, runtime: RuntimeInfo): Record<string, string>;
}

export interface InstalledPlugin { name: string; aliases: string[]; package: string | null; dir?: string }

export interface Platform {
  name: string; package: string; target: string; os: string; cpu: string;
  libc: 'glibc' | 'musl' | null; armVersion: number | null; optional: boolean; published: boolean;
  /** The library's path in the platform package (null: not in this release). */
  library: string | null;
}

export function loadDelegate(nameOrPath: string, options?: Record<string, unknown>): Delegate;
export function registerPlugin(plugin: DelegatePlugin): void;
export function findPlugin(name: string): InstalledPlugin | null;
export function installedPlugins(): InstalledPlugin[];
export function libraryInfo(): { path: string; source: string; version: string; platform: string | null; shim: string | null };
export function findLibrary(): { path: string; source: string; platform: Platform | null };
export function platformFor(machine?: { os: string; cpu: string; libc: string | null; armVersion: number | null }): Platform | null;
export function currentMachine(): { os: string; cpu: string; libc: string | null; armVersion: number | null };
export const LIBRARY_ENV: 'TFLITE_EDGE_LIBRARY';
export const version: string;
export const platforms: Platform[];
export class TfLiteError extends Error {}
/** A C++ exception TFLite threw, caught by the shim; kind: 'bad_alloc', 'runtime_error', ... */
export class TfLiteCppError extends Error { kind: string }
export class DelegateLoadError extends Error {}
export class LibraryError extends Error {}
export class PlatformError extends Error {}
