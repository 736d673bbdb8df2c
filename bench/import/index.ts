import type { BenchModule } from '../lib/module.js';
export const imports: BenchModule = { name: 'import', description: 'stub', run: async () => ({ comparisons: [], environment: {} }) };
