import { MemoryStore } from '../../src/store/memory-store';
import { abstractStoreSuite } from './abstract-store-suite';

abstractStoreSuite('MemoryStore', { create: async () => new MemoryStore() });
