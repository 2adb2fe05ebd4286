import { pino, type Logger as PinoLogger } from 'pino';
import type { SwitchboardConfig } from './config.js';

/** JSON logs on stdout (pino); fields: node_id on every line, connection_id/user_id where relevant. */
export function createLogger(config: SwitchboardConfig, nodeId: string): PinoLogger {
  return pino({ level: config.log.level, base: { node_id: nodeId }, timestamp: pino.stdTimeFunctions.isoTime });
}
