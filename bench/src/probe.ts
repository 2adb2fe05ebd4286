/**
 * Preloaded (`node --import`) into every server under test. When the process has an IPC channel,
 * it answers `{cmd:'stats', id, gc?}` with `{reply:id, cpu, mem}`: process.cpuUsage() (µs) and
 * process.memoryUsage() (bytes), after two full GCs when `gc` is set and the process runs with
 * --expose-gc. The channel is unref'd so it never keeps a server alive. It changes nothing else.
 */
if (typeof process.send === 'function') {
  process.on('message', (m: { cmd?: string; id?: number; gc?: boolean }) => {
    if (m?.cmd !== 'stats') return;
    const g = (globalThis as { gc?: () => void }).gc;
    if (m.gc && g) { g(); g(); }
    process.send!({ reply: m.id, cpu: process.cpuUsage(), mem: process.memoryUsage() });
  });
  process.channel?.unref();
}
export {};
