import type { DelegatePlugin } from 'tflite-edge';

export interface EdgeTpuDevice { type: 'usb' | 'pci' | string; path: string; index: number; name: string }
export interface EdgeTpuOptions {
  /** "usb", "pci", "usb:N", "pci:N", ":N", or unset for any Edge TPU. */
  device?: string;
  performance?: 'Low' | 'Medium' | 'High' | 'Max';
  usbAlwaysDfu?: boolean;
  usbMaxBulkInQueueLength?: number;
}

declare const plugin: DelegatePlugin & {
  listDevices(platform?: string): EdgeTpuDevice[];
  parseDevice(text: string): { type: 'usb' | 'pci' | null; index: number | null };
  version(platform?: string): string;
  udevRulesPath(): string;
  CoralError: typeof Error;
  NoEdgeTpuError: typeof Error;
  LibEdgeTpuError: typeof Error;
  TFVersionMismatchError: typeof Error;
  LIBRARY_ENV: 'TFLITE_EDGE_CORAL_LIBRARY';
  ALLOW_MISMATCH_ENV: 'TFLITE_EDGE_CORAL_ALLOW_TF_MISMATCH';
};
export = plugin;
