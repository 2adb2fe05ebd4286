import { runBrokerContract } from '../broker-contract.js';
import { MemoryBroker } from '../../src/broker/memory/memory-broker.js';
import { MemoryPresenceStore } from '../../src/broker/memory/memory-presence.js';

// The memory engine is single-process: every multi-node role of the shared contract runs on node 0.
runBrokerContract(
  'memory',
  async () => {
    const broker = new MemoryBroker();
    const presence = new MemoryPresenceStore();
    return {
      brokers: [broker],
      presences: [presence],
      cleanup: async () => {
        await broker.close();
        await presence.close();
      },
    };
  },
  { maxNodes: 1 },
);
