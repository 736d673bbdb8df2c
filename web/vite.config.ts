import { fileURLToPath } from 'node:url';

import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// The dashboard builds into <package root>/dist/web, which `runledger serve` serves at `/`.
// `npm run dev:web` proxies the API to a server on RUNLEDGER_SERVER (default http://127.0.0.1:7070).
export default defineConfig(({ command }) => ({
  root,
  base: '/',
  plugins: [react()],
  // A build is always the production React, even when NODE_ENV says otherwise (vitest sets `test`).
  define: command === 'build' ? { 'process.env.NODE_ENV': JSON.stringify('production') } : {},
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/v1': { target: process.env.RUNLEDGER_SERVER ?? 'http://127.0.0.1:7070', changeOrigin: true },
    },
  },
}));
