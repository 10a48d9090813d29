// The app shell, cached so the app opens without a signal. API data is not cached here: the app
// keeps the last lists it was shown itself (src/api.js), per user.
const CACHE = 'shouhu-field-shell-v1'
const SCOPE = new URL('./', self.location).pathname

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    const page = await fetch(SCOPE, { cache: 'no-store' })
    const html = await page.clone().text()
    // The built page names its hashed scripts and styles; cache exactly those.
    const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1])
    await cache.put(SCOPE, page)
    await cache.addAll(assets)
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key)
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return
  if (event.request.mode === 'navigate' || url.pathname.endsWith('/config.json')) {
    // Network first: a new build or configuration is picked up whenever there is a signal.
    event.respondWith((async () => {
      const cache = await caches.open(CACHE)
      const key = event.request.mode === 'navigate' ? SCOPE : event.request
      try {
        const fresh = await fetch(event.request)
        if (fresh.ok) await cache.put(key, fresh.clone())
        return fresh
      } catch (err) {
        const hit = await cache.match(key)
        if (hit) return hit
        throw err
      }
    })())
    return
  }
  // Hashed assets never change under one name: the cache first. ignoreVary: the page asks for its
  // module script with an Origin header (crossorigin) that the worker's own install fetch had not, and
  // the answer varies on Origin, so a plain match missed and a reload without signal came up blank.
  event.respondWith((async () => {
    const cache = await caches.open(CACHE)
    const hit = await cache.match(event.request, { ignoreVary: true })
    if (hit) return hit
    const fresh = await fetch(event.request)
    if (fresh.ok) await cache.put(event.request, fresh.clone())
    return fresh
  })())
})
