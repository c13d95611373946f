import type { DelegatePlugin } from 'tflite-edge';
declare const plugin: DelegatePlugin;
export = plugin;
