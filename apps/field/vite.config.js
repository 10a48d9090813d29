import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by the visits service at /app/ (shared/service.py), so every URL is relative to it.
export default defineConfig({
  base: '/app/',
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true },
})
